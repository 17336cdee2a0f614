"""``video-analytics prune`` and the ``maintenance`` DAG: the retention policy applied to the data root.

The policy (what may go) is ``video_analytics.retention``; this lists the data root, removes what the plan
says, and records it first in a marker per day (``plays/<D>/pruned.json``, ``online_time/<D>/pruned.json``:
what went, when, under which policy), so ``refuse_pruned`` can stop a re-run of a day whose raw snapshot
is gone with one clear line instead of processing nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from video_analytics import conventions as conv
from video_analytics import retention as ret

if TYPE_CHECKING:
    from include.storage import DataRoot

log = logging.getLogger(__name__)
MARKER = "pruned.json"


class DayPruned(LookupError):
    """The day's raw snapshot was pruned: it can no longer be re-run from the data root."""


def _rel(root: DataRoot, path: str) -> str:
    """A path from ``glob`` relative to the data root."""
    base = root.base.rstrip("/")
    return path[len(base) + 1:] if path.startswith(base + "/") else path


def _modified(root: DataRoot, rel: str) -> dt.datetime | None:
    """A file's modification time (aware), ``None`` when the filesystem cannot tell (then it is kept)."""
    try:
        m = root.fs.modified(root.path(rel))
    except (NotImplementedError, OSError, KeyError):
        return None
    return m if m.tzinfo else m.replace(tzinfo=dt.UTC)


def _report(root: DataRoot, rel: str) -> tuple[dt.date, bool, dt.datetime | None] | None:
    """(day, passed, written_at) of a report; ``None`` for a file that is not one."""
    try:
        day = dt.date.fromisoformat(rel.rsplit("/", 1)[-1][:-5])
        rep = root.read_json(rel)
        at = dt.datetime.fromisoformat(str(rep.get("written_at")))
    except (ValueError, TypeError, OSError, AttributeError):
        return None
    return day, rep.get("ok") is True, at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def listing(root: DataRoot) -> list[ret.Day]:
    """Every day with a passing report, and what of it the policy may remove."""
    passed = {}
    for p in root.glob(conv.REPORTS_DIR, "*.json"):
        r = _report(root, _rel(root, p))
        if r is not None and r[1]:
            passed[r[0]] = r[2]
    shards: dict[dt.date, list] = defaultdict(list)
    for p in root.glob("online_time", "*", "shards", "*"):
        rel = _rel(root, p)
        try:
            day = dt.date.fromisoformat(rel.split("/")[1])
        except ValueError:
            continue
        if day in passed:
            shards[day].append((rel, _modified(root, rel)))
    out = []
    for day, at in sorted(passed.items()):
        d = conv.ymd(day)
        snap, quar = conv.plays_path(d, "snapshot"), conv.plays_path(d, "quarantine.parquet")
        out.append(ret.Day(day, True, at, root.exists(conv.plays_path(d, "cleanup.json")), tuple(sorted(shards[day])),
                           snap if root.exists(snap) else None, quar if root.exists(quar) else None))
    return out


def _size(root: DataRoot, rel: str) -> int:
    try:
        return int(root.fs.du(root.path(rel)))
    except (OSError, ValueError, TypeError):
        return 0


def _marker(r: ret.Removal) -> str:
    day = dt.date.fromisoformat(r.day)
    if r.kind == "shards":
        return conv.online_time_path(day, MARKER)
    return conv.plays_path(conv.ymd(day), MARKER)


def _record(root: DataRoot, removals: list[ret.Removal], policy: ret.Policy, at: str) -> None:
    """The per-day markers, written before anything is removed (a crash leaves the record)."""
    by_marker: dict[str, list[ret.Removal]] = defaultdict(list)
    for r in removals:
        by_marker[_marker(r)].append(r)
    for rel, rs in by_marker.items():
        mark = root.read_json(rel) if root.exists(rel) else {}
        for r in rs:
            entry = mark.setdefault(r.kind, {"at": at, "policy": vars(policy), "paths": []})
            if r.path not in entry["paths"]:
                entry["paths"].append(r.path)
        root.write_json(mark, rel)


def prune(root: DataRoot, policy: ret.Policy, today: dt.date | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Apply ``policy`` on ``today`` (default: today, UTC): ``{"dry_run", "today", "policy", "removed": [{path,
    day, kind, why, bytes}], "bytes"}``. With ``dry_run`` nothing is written or removed."""
    today = today or dt.datetime.now(dt.UTC).date()
    plan = ret.plan(listing(root), today, policy)
    rows = [{"path": r.path, "day": r.day, "kind": r.kind, "why": r.why, "bytes": _size(root, r.path)} for r in plan]
    if not dry_run and plan:
        _record(root, plan, policy, dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
        for r in plan:
            root.remove(r.path)
            log.info("pruned %s (%s)", root.uri(r.path), r.why)
    return {"dry_run": dry_run, "today": today.isoformat(), "policy": vars(policy), "removed": rows,
            "bytes": sum(r["bytes"] for r in rows)}


def refuse_pruned(root: DataRoot, day: str) -> None:
    """Raise ``DayPruned`` (one line) when prune removed the raw snapshot of ``day`` (``YYYYMMDD``): a re-run
    would find ``T_endlist_D`` emptied by ``cleanup`` and no snapshot, and process nothing."""
    rel = conv.plays_path(day, MARKER)
    if not root.exists(rel):
        return
    snap = root.read_json(rel).get("snapshot")
    if snap:
        raise DayPruned(f"{day} cannot be re-run from the data root: prune removed its raw snapshot "
                        f"{root.uri(conv.plays_path(day, 'snapshot'))} on {snap.get('at')} (retention "
                        f"snapshot_days={snap.get('policy', {}).get('snapshot_days')}); its results and report are kept")


def policy_from(params: dict[str, Any], variable=None) -> ret.Policy:
    """The policy from a run's params; a param left empty comes from the Variable ``retention_<name>``,
    then the default. Every value is checked (``retention.PolicyError``, one line)."""
    values = {}
    for name in ret.MINIMUM:
        value = params.get(name)
        if value is None and variable is not None:
            value = variable(f"retention_{name}")
        if value is not None:
            values[name] = value
    return ret.Policy(**values)


def brief(result: dict[str, Any], limit: int = 50) -> dict[str, Any]:
    """``prune``'s result with at most ``limit`` paths (a task's XCom stays small), and counts per kind."""
    kinds: dict[str, int] = defaultdict(int)
    for r in result["removed"]:
        kinds[r["kind"]] += 1
    return {**result, "removed": result["removed"][:limit], "left_out": max(0, len(result["removed"]) - limit),
            "by_kind": dict(kinds)}


def maintenance(context) -> dict[str, Any]:
    """Task ``maintenance.prune``: the policy from the run's params (else Variables ``retention_*``, else the
    defaults) on the day the run's interval ends. A bad setting fails at once, without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.settings import data_root, variable

    p = context["params"]
    try:
        policy = policy_from(p, lambda name: variable(name, "") or None)
    except ret.PolicyError as exc:
        raise AirflowFailException(str(exc)) from exc
    end = context.get("data_interval_end") or context.get("logical_date")
    today = end.date() if end is not None else None
    return brief(prune(data_root(), policy, today=today, dry_run=bool(p.get("dry_run"))))


def add_parser(sub) -> None:
    """``video-analytics prune``'s parser under ``sub`` (``include.cli.args``)."""
    pr = sub.add_parser("prune", help="remove what the retention policy lets go from the data root "
                                      "(shards once verified, raw snapshots and quarantine after 90 days)")
    pr.add_argument("--data-root", help="the data root (default: the data_root Variable, AIRFLOW_VAR_DATA_ROOT)")
    pr.add_argument("--dry-run", action="store_true", help="list what would go; remove nothing")
    for name, default in (("shard_days", ret.SHARD_DAYS), ("snapshot_days", ret.SNAPSHOT_DAYS),
                          ("quarantine_days", ret.QUARANTINE_DAYS)):
        pr.add_argument(f"--{name.replace('_', '-')}", dest=name, default=str(default), metavar="DAYS",
                        help=f"days kept (default {default}; DAG param / Variable retention_{name})")


def cli(args) -> int:
    """``video-analytics prune``: the policy from the options, applied today (UTC); the result as JSON."""
    import json

    from include.cli.common import data_root, emit

    policy = ret.Policy(args.shard_days, args.snapshot_days, args.quarantine_days)
    emit(json.dumps(prune(data_root(args), policy, dry_run=args.dry_run), indent=2))
    return 0
