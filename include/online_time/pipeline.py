"""The whole online-time computation in one process tree, for the CLI and benchmarks.

With the C accelerator built (``video_analytics.online_time.HAVE_FAST``) and the users' events in
time order in the files (real logs), one process streams the files through the parser and the
rules with no sort (``include.online_time.stream``). Otherwise (or with ``stream=False``) the
task group's stages run: Arrow IPC shards, each shard's rules (in 2 spawned processes when a
second core is free), the merge.
"""

from __future__ import annotations

import os
from datetime import date

import pyarrow.parquet as pq

from include.procs import die_with_parent
from include.storage import DataRoot
from video_analytics import conventions as conv
from video_analytics import online_time as core


def _warm_up() -> None:
    """Submitted once per worker: the workers import NumPy and Arrow while the window is checked."""
    return None


def write_out(root: DataRoot, totals: dict, out: str, table=None) -> None:
    """The window's result table (``totals['result_path']`` unless given) into ``out`` (.csv or .parquet)."""
    table = root.read_table(totals["result_path"]) if table is None else table
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    if out.endswith(".csv"):
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, out, pacsv.WriteOptions(quoting_style="none", quoting_header="none"))
    else:
        pq.write_table(table, out)


def run_window(work_dir: str, log_dir: str, end: date, out: str, *, window_days: int = conv.WINDOW_DAYS,
               lookback_days: int = conv.LOOKBACK_DAYS, shards: int = conv.SHARDS,
               max_reject_rate: float = conv.MAX_REJECT_RATE, stream: bool = True,
               rules: dict | None = None) -> tuple[dict, dict]:
    """Compute the window ending ``end`` into ``out`` (.csv or .parquet); ``(partition, totals)``.

    ``rules``: ``min_gap``, ``timeout``, ``post_multiplier`` (CONTRACT §1; defaults otherwise).
    ``stream=False`` forces the sorting pipeline (``shards`` only matters there)."""
    root = DataRoot(work_dir if "://" in work_dir else os.path.abspath(work_dir))
    table: list = []
    part, totals = compute(root, log_dir, end, window_days, lookback_days, max_reject_rate, rules, shards=shards,
                           stream=stream, result=table)
    write_out(root, totals, out, table[0] if table else None)
    return part, totals


def compute(root: DataRoot, log_dir: str, end: date, window_days: int, lookback_days: int,
            max_reject_rate: float, rules: dict | None = None, *, shards: int = conv.SHARDS, stream: bool = True,
            result: list | None = None) -> tuple[dict, dict]:
    """The window from all its files into ``root``'s ``online_time/<end>/``: streamed when it can be,
    else the sorting stages. ``(partition, totals)``; the result table is appended to ``result``
    when the streamed run made it."""
    if stream and core.HAVE_FAST:
        from include.online_time.stream import stream_window

        done = stream_window(root, log_dir, end, window_days, lookback_days, max_reject_rate,
                             core.Rules(**(rules or {})), result=result)
        if done is not None:
            return done
    return _run_sorted(root, log_dir, end, window_days, lookback_days, shards, max_reject_rate, rules)


def _run_sorted(root: DataRoot, log_dir: str, end: date, window_days: int, lookback_days: int,
                shards: int, max_reject_rate: float, rules: dict | None = None) -> tuple[dict, dict]:
    """The task group's stages in this process tree: shards, then their rules in 2 spawned
    processes when a second core is free, then the merge."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from include.online_time.compute_shard import compute_shard
    from include.online_time.logs import parse_threads
    from include.online_time.merge_report import merge_report
    from include.online_time.sort_and_partition import sort_and_partition

    workers = parse_threads()
    executor = (ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=die_with_parent,
                                    initargs=(os.getpid(),)) if workers > 1 else None)
    if executor is not None:
        for _ in range(workers):
            executor.submit(_warm_up)
    try:
        part = sort_and_partition(root, log_dir, end, window_days, lookback_days, shards, max_reject_rate)
        args = [(root, s, end, window_days, rules) for s in part["shards"]]
        if executor is not None:
            results = list(executor.map(compute_shard, *zip(*args, strict=True)))
        else:
            results = [compute_shard(*a) for a in args]
        totals = merge_report(root, end, results)
    finally:
        if executor is not None:
            executor.shutdown()
    return part, totals
