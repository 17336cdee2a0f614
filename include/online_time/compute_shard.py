"""Task ``online_time.compute_shard`` (mapped): every user's online time in one user-aligned shard."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa

from include.online_time.logs import column, numpy_of
from include.storage import DataRoot
from video_analytics import conventions as conv
from video_analytics import online_time as core

COLUMNS = ("userid", "logtime", "action")
RESULT_SCHEMA = pa.schema([("userid", pa.int64()), ("online_seconds", pa.int64()), ("sessions", pa.int64())])


def read_shard(root: DataRoot, rel: str, columns: list[str] | None = None) -> pa.Table:
    """A shard written by ``sort_and_partition`` (Arrow IPC): memory-mapped when the data root is
    local (no copy), read whole otherwise."""
    proto = root.fs.protocol if isinstance(root.fs.protocol, str) else root.fs.protocol[0]
    if proto in ("file", "local"):
        with pa.memory_map(root.path(rel)) as src:
            t = pa.ipc.open_file(src).read_all()
    else:
        with root.fs.open(root.path(rel), "rb") as fh:
            t = pa.ipc.open_file(pa.BufferReader(fh.read())).read_all()
    return t.select(columns) if columns else t


def _sorted_rules(uid: np.ndarray, lt: np.ndarray, act: np.ndarray, win_start: int, win_stop: int,
                  rules: core.Rules) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = core.order_by_user_time(uid, lt)
    return core.online_time(uid[order], lt[order], act[order], win_start, win_stop, rules)


def table_rules(t: pa.Table, win_start: int, win_stop: int,
                rules: core.Rules) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rules over one shard's events in file order: streamed when the accelerator is built and
    every user's time goes forward, else after a stable sort by ``(userid, logtime)`` (file order
    breaks ties, as ``(file date, line)`` must). The record batches (one per block
    ``sort_and_partition`` appended) are fed one after the other straight from the memory map; the
    columns are joined into single arrays (a copy) only for the sort."""
    if core.HAVE_FAST:
        sr = core.StreamingRules(win_start, win_stop, rules)
        if all(sr.feed(*(numpy_of(b.column(c)) for c in COLUMNS)) for b in t.to_batches()):
            return sr.result()
    uid, lt, act = (numpy_of(t.column(c)) for c in COLUMNS)
    return _sorted_rules(uid, lt, act, win_start, win_stop, rules)


def compute_shard(root: DataRoot, shard: dict, end: date, window_days: int = conv.WINDOW_DAYS,
                  rules: dict | None = None) -> dict:
    """One shard planned by ``sort_and_partition`` into its per-user result part: its events (a shard
    file), or its users' day summaries (``mode`` ``summaries``: ``summary_shards.compute``)."""
    r = core.Rules(**(rules or {}))
    if shard.get("mode") == "summaries":
        from include.online_time.summary_shards import compute

        return write_part(root, end, shard["index"], *compute(root, shard, end, window_days, r))
    t = read_shard(root, shard["path"], list(COLUMNS))
    win_start, win_stop = core.window_bounds(end, window_days)
    users, online, sessions = table_rules(t, win_start, win_stop, r)
    del t
    return write_part(root, end, shard["index"], users, online, sessions)


def write_part(root: DataRoot, end: date, index: int, users: np.ndarray, online: np.ndarray,
               sessions: np.ndarray) -> dict:
    """Shard ``index``'s result part (``RESULT_SCHEMA``) and its small descriptor (the task's XCom)."""
    rel = conv.result_path(end, index)
    cols = [column(np.asarray(a, np.int64), pa.int64()) for a in (users, online, sessions)]
    root.write_table(pa.Table.from_arrays(cols, schema=RESULT_SCHEMA), rel)
    return {
        "index": index,
        "path": rel,
        "users": len(users),
        "online_seconds": int(online.sum()),
        "sessions": int(sessions.sum()),
    }
