"""The CLI's fast path: the window's logs through the C parser and the streaming rules, no sort.

Files are read in day order (lookback first) in blocks of whole lines (``include.online_time.logs``);
each block is parsed and fed at once to one ``StreamingRules``, so memory holds a block's events
plus one state per user. While the main thread feeds a block, a second thread parses the next one
when a second core is free. It needs every user's events to come in time order in
the files, as real logs do: when some user's time goes back the run returns None and the caller
uses the sorting pipeline instead (same results, slower).

Writes ``rejects.parquet``, ``partition.json``, ``online_time.parquet`` and ``totals.json`` under
``online_time/<end>/`` as the task group does (no shards: there are none).
"""

from __future__ import annotations

import logging
from datetime import date

import pyarrow as pa

from include.online_time.compute_shard import RESULT_SCHEMA
from include.online_time.logs import (
    STREAM_BLOCK_BYTES,
    BlockTally,
    column,
    parse_threads,
    parsed_blocks,
    prefetch,
    window_missing,
)
from include.online_time.sort_and_partition import check_reject_rate, check_window, clear_run
from include.storage import DataRoot
from video_analytics import conventions as conv
from video_analytics import online_time as core

log = logging.getLogger(__name__)

def stream_window(root: DataRoot, log_dir: str, end: date, window_days: int = conv.WINDOW_DAYS,
                  lookback_days: int = conv.LOOKBACK_DAYS, max_reject_rate: float = conv.MAX_REJECT_RATE,
                  rules: core.Rules | None = None, *, block_bytes: int = STREAM_BLOCK_BYTES,
                  threads: int | None = None, result: list | None = None) -> tuple[dict, dict] | None:
    """``(partition, totals)`` of the window ending ``end``, or None when some user's events are not
    in time order in the files (nothing is written then). Needs ``core.HAVE_FAST``. The result
    table is also appended to ``result`` when given (saves reading it back)."""
    missing_days = window_missing(root, log_dir, end, window_days)
    files = check_window(log_dir, end, window_days, lookback_days, missing_days)
    win_start, win_stop = core.window_bounds(end, window_days)
    threads = parse_threads() if threads is None else threads
    sr = core.StreamingRules(win_start, win_stop, rules or core.Rules())
    tally = BlockTally()
    gen = parsed_blocks(files, block_bytes)
    blocks = prefetch(gen, threads)
    try:
        for fi, p in blocks:
            tally.add(files[fi], p)
            if not sr.feed(p.userid, p.logtime, p.action):
                log.warning("a user's events go back in time in %s: sorting instead of streaming", files[fi])
                return None
    finally:
        blocks.close()  # waits for a parse still running in the second thread
        gen.close()
    users, online, sessions = sr.result()

    rd = conv.online_time_path(end)
    clear_run(root, end)
    rej = tally.rejects()
    rows_in, rows_parsed = tally.rows_in, tally.rows_parsed
    rejects_path = conv.online_time_path(end, "rejects.parquet")
    root.write_table(rej, rejects_path)
    part = {"end": end.isoformat(), "run_dir": rd, "window_days": window_days, "lookback_days": lookback_days,
            "shards": [], "mode": "stream", "rows_in": rows_in, "rows_parsed": rows_parsed,
            "rejects": rej.num_rows, "rejects_path": rejects_path, "files": files,
            "distinct_users_in_window": len(users), "missing_days": missing_days}
    root.write_json(part, conv.online_time_path(end, "partition.json"))
    result_path = conv.online_time_path(end, "online_time.parquet")
    table = pa.Table.from_arrays([column(users, pa.int64()), column(online, pa.int64()),
                                  column(sessions, pa.int64())], schema=RESULT_SCHEMA)
    root.write_table(table, result_path)
    if result is not None:
        result.append(table)
    totals = {"end": end.isoformat(), "users": len(users), "online_seconds": int(online.sum()),
              "sessions": int(sessions.sum()), "rows_in": rows_in, "rows_parsed": rows_parsed,
              "rejects": rej.num_rows, "shards": 0, "shards_with_results": 0,
              "distinct_users_in_window": len(users), "result_path": result_path, "published": None,
              "missing_days": missing_days}
    root.write_json(totals, conv.online_time_path(end, "totals.json"))
    check_reject_rate(rej.num_rows, rows_in, max_reject_rate, root.uri(rejects_path))
    return part, totals
