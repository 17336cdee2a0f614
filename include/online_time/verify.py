"""The online-time section of task ``verify``: the window's results against its shards."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from include.online_time.compute_shard import read_shard
from include.storage import DataRoot
from video_analytics import checks
from video_analytics import conventions as conv
from video_analytics import online_time as core


def _rows(root: DataRoot, rel: str) -> int:
    with root.fs.open(root.path(rel), "rb") as fh:
        return pq.ParquetFile(fh).metadata.num_rows


def verify_online_time(root: DataRoot, end: date, max_reject_rate: float = conv.MAX_REJECT_RATE) -> list[dict]:
    """Checks recomputed from what is on the data root: ``[{"name", "ok", "detail"}]``. Shards made from
    day summaries are checked against those summaries (``_summary_shards``); a window the CLI streamed or
    made from day summaries (no shards) is checked against its own counts."""
    manifest = conv.online_time_path(end, "partition.json")
    if not root.exists(manifest):
        return [checks.check("partition", False, f"{root.uri(manifest)} is missing")]
    part = root.read_json(manifest)
    results = [conv.result_path(end, s["index"]) for s in part["shards"]]
    missing_parts = [p for p in results if not root.exists(p)]
    extra = []
    if part.get("mode") == "summaries" and part["shards"]:
        missing_shards, parsed, users_expected, extra = _summary_shards(root, part, end, results, missing_parts)
    else:
        missing_shards, parsed, users_expected = _event_shards(root, part, end)
    rejects = _rows(root, part["rejects_path"]) if root.exists(part["rejects_path"]) else 0
    parts_users = sum(_rows(root, p) for p in results if p not in missing_parts)
    result = conv.online_time_path(end, "online_time.parquet")
    users_out, unique = None, False
    if root.exists(result):
        out = root.read_table(result, columns=["userid"]).column("userid").to_numpy()
        users_out, unique = len(out), len(np.unique(out)) == len(out)
    if part.get("mode") in ("stream", "summaries") and not part["shards"]:  # the run's own counts instead
        parsed, users_expected, parts_users = part["rows_parsed"], part["distinct_users_in_window"], users_out or 0
    out = checks.online_time_checks(
        shards=len(part["shards"]), missing_shards=missing_shards, missing_parts=missing_parts,
        rows_in=part["rows_in"], parsed=parsed, rejects=rejects, users_out=users_out, users_unique=unique,
        parts_users=parts_users, users_expected=users_expected, result_uri=root.uri(result),
        max_reject_rate=max_reject_rate) + extra
    if part.get("missing_days"):
        out.append(missing_days_check(root, part["missing_days"]))
    return out


def _event_shards(root: DataRoot, part: dict, end: date) -> tuple[list[str], int, int]:
    """``(missing shard files, rows in the shards, users with an in-window event in them)``."""
    win_start, win_stop = core.window_bounds(end, int(part.get("window_days", conv.WINDOW_DAYS)))
    missing_shards = [s["path"] for s in part["shards"] if not root.exists(s["path"])]
    parsed = users_expected = 0
    for s in part["shards"]:
        if s["path"] in missing_shards:
            continue
        t = read_shard(root, s["path"], ["userid", "logtime"])
        parsed += t.num_rows
        lt = t.column("logtime").cast(pa.int64()).to_numpy()
        uid = t.column("userid").to_numpy()
        users_expected += len(np.unique(uid[(lt >= win_start) & (lt < win_stop)]))
    return missing_shards, parsed, users_expected


def _summary_shards(root: DataRoot, part: dict, end: date, results: list[str], missing_parts: list[str]
                    ) -> tuple[list[str], int, int, list[dict]]:
    """Shards planned over day summaries: ``(missing summaries, rows the summaries' logs parsed, users with an
    in-window event in the summaries, [check])``. The check: each shard's part holds exactly its users
    (``shard_of``) with the users, seconds and sessions the summaries give (recombined with the NumPy
    combiner), and the partition's row counts are the summaries' own."""
    from include.online_time.summary_shards import expected

    exp = expected(root, part, end)
    n, bad = len(part["shards"]), []
    for i, (rel, want) in enumerate(zip(results, exp["shards"], strict=True)):
        if rel in missing_parts:
            continue
        t = root.read_table(rel)
        uid = t.column("userid").to_numpy()
        got = {"users": t.num_rows, "online_seconds": int(pc.sum(t.column("online_seconds")).as_py() or 0),
               "sessions": int(pc.sum(t.column("sessions")).as_py() or 0)}
        if got != want or bool((core.shard_of(uid, n) != i).any()):
            bad.append(f"shard {i}: {got}, summaries say {want}")
    counts = {k: (part[k], exp[k]) for k in ("rows_in", "rows_parsed", "rejects") if part[k] != exp[k]}
    users = sum(s["users"] for s in exp["shards"])
    detail = (f"{n} shards over {len(part['days'])} day summaries: " + ("; ".join(bad) if bad else
              f"each shard's users, seconds and sessions as the summaries give ({users} users)")
              + (f"; partition vs summaries counts differ: {counts}" if counts else "")
              + (f"; missing summaries: {exp['missing']}" if exp["missing"] else ""))
    check = checks.check("shard results == their day summaries", not bad and not counts and not exp["missing"],
                         detail)
    return exp["missing"], exp["rows_parsed"], users, [check]


def describe_missing(missing_days: list[dict]) -> str:
    """``2014-01-05 (file absent; accepted by ops at ...: reason)``, one per accepted-missing day."""
    return "; ".join(f"{m['day']} (file {m.get('file', 'absent')}; accepted by {m.get('accepted_by')} at "
                     f"{m.get('accepted_at')}: {m.get('reason') or 'no reason given'})" for m in missing_days)


def missing_days_check(root: DataRoot, missing_days: list[dict]) -> dict:
    """The window ran without the logs of days accepted as lost: named, and still accepted."""
    from include.online_time.logs import accepted_missing

    days = [date.fromisoformat(m["day"]) for m in missing_days]
    revoked = [d.isoformat() for d in days if d not in accepted_missing(root, days)]
    detail = f"{len(days)} day(s) of the window accepted as lost: {describe_missing(missing_days)}"
    if revoked:
        detail += f"; acceptance withdrawn since the run: {', '.join(revoked)} (run the window again)"
    return checks.check("accepted missing days", not revoked, detail)
