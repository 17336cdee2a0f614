"""Task ``online_time.compute_shard`` (mapped): every user's online time in one sorted shard."""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from include.storage import DataRoot
from video_analytics import conventions as conv
from video_analytics import online_time as core

RESULT_SCHEMA = pa.schema([("userid", pa.int64()), ("online_seconds", pa.int64()), ("sessions", pa.int64())])


def write_result(root: DataRoot, index: int, end: date, uid, lt, act, win_start: int, win_stop: int,
                 rules: core.Rules) -> dict:
    """Apply the rules to one shard's sorted arrays; write ``results/part-<index>.parquet``."""
    users, online, sessions = core.online_time(uid, lt, act, win_start, win_stop, rules)
    rel = conv.result_path(end, index)
    root.write_table(pa.table([users, online, sessions], schema=RESULT_SCHEMA), rel)
    return {
        "index": index,
        "path": rel,
        "users": len(users),
        "online_seconds": int(online.sum()),
        "sessions": int(sessions.sum()),
    }


def compute_shard(root: DataRoot, shard: dict, end: date, window_days: int = conv.WINDOW_DAYS,
                  rules: dict | None = None) -> dict:
    """Read one shard written by ``sort_and_partition`` and write its per-user results."""
    r = core.Rules(**(rules or {}))
    t = root.read_table(shard["path"], columns=["userid", "logtime", "action"])
    win_start, win_stop = core.window_bounds(end, window_days)
    uid = t.column("userid").to_numpy()
    lt = t.column("logtime").cast(pa.timestamp("s")).cast(pa.int64()).to_numpy()
    act = t.column("action").to_numpy()
    del t
    return write_result(root, shard["index"], end, uid, lt, act, win_start, win_stop, r)
