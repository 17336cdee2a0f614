"""The DAG's shard group from per-day summaries (CONTRACT §1: every log is read once).

``plan`` (in ``sort_and_partition``) has the window's day summaries on the data root, parsing only the
days without one (``summaries.SummaryCache``), and describes ``shards`` user-aligned shards: shard ``i``
is the users with ``shard_of(userid, shards) == i`` in every day's summary, so no shard file is written.
``compute`` (in the mapped ``compute_shard``) combines one shard's users over the window's days: the
same result part as the full path. ``expected`` recomputes every shard's users and totals from the
summaries, for ``verify``. A window that day summaries cannot do (a file holding a time outside its
day) gets None from ``plan``: ``sort_and_partition`` then runs the full path.
"""

from __future__ import annotations

from datetime import date

import numpy as np

from include.online_time.logs import STREAM_BLOCK_BYTES
from include.online_time.summaries import (
    SummaryCache,
    combine_days,
    read_summary,
    stored_path,
    window_rows,
    window_summaries,
)
from include.storage import DataRoot
from video_analytics import online_time as core

MODE = "summaries"


def plan(root: DataRoot, files: list[str], shards: int, rules: core.Rules,
         block_bytes: int = STREAM_BLOCK_BYTES) -> dict | None:
    """The window's shards over its day summaries, or None when the summaries cannot do the window.

    ``{"shards": [descriptor], "days": [[day, summary path]], "rejects": table or None, "rows_in",
    "rows_parsed", "days_parsed", "days_reused"}``; a descriptor (the mapped task's XCom) is
    ``{"index", "mode": "summaries", "shards", "rows" (the shard's user-days), "days"}``."""
    days = window_summaries(SummaryCache(root, rules, block_bytes), files)
    if days is None:
        return None
    rels = [[s.day.isoformat(), stored_path(s, rules)] for s in days]
    rows = np.zeros(shards, np.int64)
    for s in days:
        rows += np.bincount(core.shard_of(s.summary["userid"], shards), minlength=shards)
    rejects, rows_in, rows_parsed = window_rows(days)
    return {"shards": [{"index": i, "mode": MODE, "shards": shards, "rows": int(rows[i]), "days": rels}
                       for i in range(shards)],
            "days": rels, "rejects": rejects, "rows_in": rows_in, "rows_parsed": rows_parsed,
            "days_parsed": [s.day.isoformat() for s in days if s.parsed],
            "days_reused": [s.day.isoformat() for s in days if not s.parsed]}


def _summary(root: DataRoot, rel: str) -> tuple[dict, dict]:
    try:
        return read_summary(root, rel)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"day summary {root.uri(rel)} is gone (its log changed since sort_and_partition planned the "
            "shards): clear online_time.sort_and_partition to plan them again") from exc


def compute(root: DataRoot, shard: dict, end: date, window_days: int, rules: core.Rules
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(userid, online_seconds, sessions)`` of one summaries-mode shard's users, by userid."""
    index, n = shard["index"], shard["shards"]
    days = []
    for day, rel in shard["days"]:
        summary, _ = _summary(root, rel)
        mine = core.shard_of(summary["userid"], n) == index
        days.append((date.fromisoformat(day), {c: v[mine] for c, v in summary.items()}))
    return combine_days(rules, days, end, window_days)


def expected(root: DataRoot, part: dict, end: date) -> dict:
    """What a summaries-mode window's results must be, recomputed from its day summaries with the NumPy
    combiner (the tasks use the C one when built): ``{"missing": [summary uris], "rows_in", "rows_parsed",
    "rejects" (the summaries' counts), "shards": [{"users", "online_seconds", "sessions"}]}``."""
    rules = core.Rules(*part["rules"])
    n = len(part["shards"])
    days, missing, meta_sum = [], [], {"rows_in": 0, "rows_parsed": 0, "rejects": 0}
    for day, rel in part["days"]:
        if not root.exists(rel):
            missing.append(root.uri(rel))
            continue
        summary, meta = read_summary(root, rel)
        days.append((date.fromisoformat(day), summary))
        for k in meta_sum:
            meta_sum[k] += int(meta[k])
    users, online, sessions = combine_days(rules, days, end, int(part["window_days"]), fast=False)
    shard = core.shard_of(users, n) if n else np.empty(0, np.int32)
    count = np.bincount(shard, minlength=n)
    secs = np.bincount(shard, weights=online, minlength=n)
    sess = np.bincount(shard, weights=sessions, minlength=n)
    return {"missing": missing, **meta_sum,
            "shards": [{"users": int(count[i]), "online_seconds": int(secs[i]), "sessions": int(sess[i])}
                       for i in range(n)]}
