"""The running totals on the data root (``totals/``): the stat documents' source, at a cost per day that
does not grow with history.

Layout::

    totals/registry.json                      {"days": {D: rollup_id}, "snapshots": {D: dir}, "head": D}
    totals/snapshots/<D>-<token>/<kind>.parquet   the state after folding every registered day <= D
    totals/published/<target>.parquet         coll, id, hash of each stat document last published
    totals/baseline/<name>/<kind>.parquet     the legacy job's totals, the state before the first day
                                              (``include.plays.baseline``; named in the registry)

A day's rollup folds its contribution into the state (``video_analytics.totals.fold``). The state is
kept on disk after the last day of each calendar month (checkpoints), after the latest day and after the
day before it. Folding the newest day reads the latest state; re-running the latest day starts from the
state before it; re-running (or first running) an earlier day starts from the checkpoint before it and
re-folds the later days, which invalidates and replaces every snapshot after it. Either way the result is
bit-identical to one in-order run.

Every function here that changes ``totals/`` runs under the totals lease
(``include.plays.lease.totals_lease``), held by its caller.
"""

from __future__ import annotations

import uuid

import pandas as pd

from include.plays.baseline import baseline_day, baseline_state
from include.plays.lease import ensure_held
from include.plays.store import read_frame, write_frame
from include.storage import DataRoot
from video_analytics import totals as tot
from video_analytics.conventions import plays_path, totals_path

REGISTRY = totals_path("registry.json")


def read_registry(root: DataRoot) -> dict:
    """``{"days": {day: rollup_id}, "snapshots": {day: dir}, "head": day | None}``."""
    if not root.exists(REGISTRY):
        return {"days": {}, "snapshots": {}, "head": None}
    return root.read_json(REGISTRY)


def day_contribution(root: DataRoot, day: str) -> dict[str, pd.DataFrame]:
    """The day's stored contribution to the totals (``plays/<day>/contrib/``)."""
    return {k: read_frame(root, plays_path(day, "contrib", f"{k}.parquet")) for k in tot.TABLES}


def load_state(root: DataRoot, snapshot: str) -> dict[str, pd.DataFrame]:
    """A snapshot's state."""
    return {k: read_frame(root, totals_path("snapshots", snapshot, f"{k}.parquet")) for k in tot.STATE_KINDS}


def write_state(root: DataRoot, state: dict[str, pd.DataFrame], through: str) -> str:
    name = f"{through}-{uuid.uuid4().hex[:8]}"
    for k, df in state.items():
        write_frame(root, df, totals_path("snapshots", name, f"{k}.parquet"))
    return name


def base_for(reg: dict, day: str) -> str | None:
    """The latest kept state strictly before ``day`` (``None``: start from the baseline)."""
    before = [d for d in reg["snapshots"] if d < day]
    return max(before) if before else None


def replay(root: DataRoot, reg: dict, start: str | None, days: list[str], keep=frozenset()):
    """Fold ``days`` (sorted, all after ``start``) into the state kept at ``start`` (``None``: the baseline,
    ``include.plays.baseline``). Yields ``(day, state)`` after each day whose state is wanted (``keep``),
    and the last one."""
    state = load_state(root, reg["snapshots"][start]) if start else baseline_state(root, reg)
    prev = start or baseline_day(reg)
    for i, d in enumerate(days):
        state = tot.fold(state, prev, day_contribution(root, d), d)
        prev = d
        if d in keep or i == len(days) - 1:
            yield d, state


def fold_day(root: DataRoot, day: str, rollup_id: str) -> dict:
    """Register day D's (new) contribution and bring the kept states up to date (caller holds the
    totals lease). Returns what was read and written."""
    reg = read_registry(root)
    days = dict(reg["days"])
    days[day] = rollup_id
    ordered = sorted(days)
    keep = tot.kept_snapshots(ordered)
    start = base_for(reg, day)
    todo = [d for d in ordered if start is None or d > start]
    snapshots = {d: s for d, s in reg["snapshots"].items() if d < day and d in keep}
    written = []
    for d, state in replay(root, reg, start, todo, keep):
        if d in keep:
            snapshots[d] = write_state(root, state, d)
            written.append(d)
    new = {**reg, "days": days, "snapshots": snapshots, "head": ordered[-1]}
    ensure_held()
    root.write_json(new, REGISTRY)
    live = set(snapshots.values())
    for p in root.glob(totals_path("snapshots", "*")):
        name = p.rstrip("/").split("/")[-1]
        if name not in live:
            root.remove(totals_path("snapshots", name))
    return {"start": start, "days_folded": todo, "snapshots_written": written, "head": new["head"],
            "days_registered": len(days)}


def head_state(root: DataRoot) -> tuple[dict[str, pd.DataFrame], dict]:
    """The state after every registered day (the baseline's before the first), and the registry."""
    reg = read_registry(root)
    head = reg["head"]
    return (load_state(root, reg["snapshots"][head]) if head else baseline_state(root, reg)), reg


def stat_documents(state: dict[str, pd.DataFrame], vids=None, uids=None) -> list[dict]:
    """``<uid>_stat`` documents of ``state`` (of ``vids`` / ``uids`` only, ``None`` = all), each
    ``{coll, _id, kind, doc}``."""
    out = [{"coll": f"{uid}_stat", "_id": vid, "kind": "vid", "doc": doc}
           for uid, vid, doc in tot.vid_stat_docs(state, vids)]
    out += [{"coll": f"{uid}_stat", "_id": uid, "kind": "uid", "doc": doc} for uid, doc in tot.uid_stat_docs(state, uids)]
    return out
