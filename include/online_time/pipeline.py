"""The whole online-time computation in one process tree, for the CLI and benchmarks.

The same stages as the DAG's task group, with files and shards run in a spawn process pool
and each shard's rules applied right after its sort, on the arrays in memory.
"""

from __future__ import annotations

import os
from datetime import date

import pyarrow.parquet as pq

from include.online_time.merge_report import merge_report
from include.online_time.sort_and_partition import sort_and_partition
from include.storage import DataRoot
from video_analytics import conventions as conv


def _warm_up() -> None:
    """Submitted once per worker: the workers import NumPy and Arrow while the window is checked."""
    return None


def die_with_parent(parent: int) -> None:
    """Worker initializer: the kernel kills the worker when its parent dies (even by kill -9)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: workers notice the broken pipe instead
        pass
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def run_window(work_dir: str, log_dir: str, end: date, out: str, *, window_days: int = conv.WINDOW_DAYS,
               lookback_days: int = conv.LOOKBACK_DAYS, shards: int = conv.SHARDS,
               max_reject_rate: float = conv.MAX_REJECT_RATE) -> tuple[dict, dict]:
    """Compute the window ending ``end`` into ``out`` (.csv or .parquet); ``(partition, totals)``."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    root = DataRoot(os.path.abspath(work_dir))
    workers = max(1, min(2, os.cpu_count() or 1))
    executor = (ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=die_with_parent,
                                    initargs=(os.getpid(),)) if workers > 1 else None)
    if executor is not None:
        for _ in range(workers):
            executor.submit(_warm_up)
    try:
        part = sort_and_partition(root, log_dir, end, window_days, lookback_days, shards, max_reject_rate,
                                  executor=executor, rules={}, fast_shards=True)
        results = part.pop("shard_results")
        totals = merge_report(root, end, results)
        table = root.read_table(totals["result_path"])
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        if out.endswith(".csv"):
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, out, pacsv.WriteOptions(quoting_style="none", quoting_header="none"))
        else:
            pq.write_table(table, out)
    finally:
        if executor is not None:
            executor.shutdown()
    return part, totals
