"""Task ``online_time.sort_and_partition``: the window's logs into user-aligned Arrow IPC shards.

Streams each log file in blocks, parses them (``video_analytics.online_time``: the C accelerator,
else NumPy) and appends each block's events to their user's shard on the data root, in file order.
Sorting is left to ``compute_shard``, which needs it only when some user's time goes back in the
files. Rejected lines go to ``rejects.parquet``, the manifest to ``partition.json`` (paths:
``video_analytics.conventions``).
"""

from __future__ import annotations

import logging
import posixpath
from datetime import date

import fsspec
import pyarrow as pa

from include.errors import RejectThresholdExceeded
from include.online_time.logs import (
    REJECT_SCHEMA,
    STREAM_BLOCK_BYTES,
    BlockTally,
    column,
    parse_threads,
    parsed_blocks,
    prefetch,
    window_missing,
)
from include.procs import remove_stale_spill_dirs
from include.storage import DataRoot
from video_analytics import conventions as conv
from video_analytics import online_time as core

log = logging.getLogger(__name__)


SHARD_SCHEMA = pa.schema(
    [
        ("userid", pa.int64()),
        ("logtime", pa.timestamp("s")),
        ("action", pa.int8()),
    ]
)  # rows in file order, (file date, line): the tie order of the rules

def check_reject_rate(rejects: int, rows_in: int, max_reject_rate: float, where: str) -> None:
    """``RejectThresholdExceeded`` when ``rejects`` exceed ``max_reject_rate`` of ``rows_in``."""
    rate = rejects / rows_in if rows_in else 0.0
    if rate > max_reject_rate:
        raise RejectThresholdExceeded(
            f"{rejects} rejected line(s) of {rows_in} ({rate:.4%}) exceed the threshold "
            f"{max_reject_rate:.4%}; see {where}"
        )


def check_window(log_dir: str, end: date, window_days: int = conv.WINDOW_DAYS,
                 lookback_days: int = conv.LOOKBACK_DAYS, accepted: list[dict] = ()) -> list[str]:
    """Paths of the window's log files (lookback days first), in day order.

    A missing window file raises ``FileNotFoundError`` naming every missing file, unless its day is
    in ``accepted`` (``window_missing``'s records: accepted as lost, an empty day); a missing
    lookback file is skipped with a warning.
    """
    lookback, window = core.window_dates(end, window_days, lookback_days)
    fs, base = fsspec.core.url_to_fs(log_dir)

    def path(d: date) -> str:
        return posixpath.join(base, conv.log_file_name(d)) if base else conv.log_file_name(d)

    first, last = window[0], window[-1]
    lost = {m["day"] for m in accepted}
    window = [d for d in window if d.isoformat() not in lost or fs.isfile(path(d))]
    missing = [path(d) for d in window if not fs.isfile(path(d))]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} log file(s) of the window {first}..{last} missing: " + ", ".join(missing)
            + " (a day lost for good: `video-analytics accept-missing`)"
        )
    found = []
    for d in lookback:
        if fs.isfile(path(d)):
            found.append(path(d))
        else:
            log.warning("lookback log file %s is missing; sessions open at the window start are lost", path(d))
    proto = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    prefix = "" if proto in ("file", "local") else f"{proto}://"
    return [prefix + p for p in found + [path(d) for d in window]]


RUN_FILES = ("partition.json", "shards", "results", "rejects.parquet", "online_time.parquet", "totals.json")


def clear_run(root: DataRoot, end: date) -> None:
    """Remove what a full run for ``end`` wrote in ``online_time/<end>/``, not the windows' ``w<W>/`` folders."""
    for name in RUN_FILES:
        root.remove(conv.online_time_path(end, name))


def window_bytes(files: list[str]) -> int:
    """The total size of ``check_window``'s files (local paths or fsspec URLs)."""
    total = 0
    for f in files:
        fs, p = fsspec.core.url_to_fs(f)
        total += fs.size(p)
    return total


class _ShardFiles:
    """One Arrow IPC file per shard on the data root, staged (``DataRoot.stage``) and put in place on
    ``close`` (so a shard file is whole or absent); record batches are appended as blocks are parsed, in
    file order."""

    def __init__(self, root: DataRoot, end: date, shards: int):
        self.root, self.end, self.shards = root, end, shards
        self.rows = [0] * shards
        self._open: dict[int, tuple] = {}

    def _writer(self, i: int):
        if i not in self._open:
            st = self.root.stage(conv.shard_path(self.end, i))
            self._open[i] = (st, pa.ipc.new_file(st.fh, SHARD_SCHEMA))
        return self._open[i][1]

    def write(self, i: int, columns: list) -> None:
        w = self._writer(i)
        with self.root.writing(self._open[i][0].path):  # a full disk names the shard
            w.write_batch(pa.record_batch(columns, schema=SHARD_SCHEMA))
        self.rows[i] += len(columns[0])

    def close(self) -> None:
        for i in range(self.shards):
            self._writer(i)  # an empty shard is an empty file
        for st, w in self._open.values():
            with self.root.writing(st.path):
                w.close()
            st.commit()
        self._open.clear()

    def abort(self) -> None:
        for st, w in self._open.values():
            try:
                w.close()
            finally:
                st.abort()
        self._open.clear()


_TS = pa.timestamp("s")


def sort_and_partition(
    root: DataRoot,
    log_dir: str,
    end: date,
    window_days: int = conv.WINDOW_DAYS,
    lookback_days: int = conv.LOOKBACK_DAYS,
    shards: int | None = conv.SHARDS,
    max_reject_rate: float = conv.MAX_REJECT_RATE,
    *,
    block_bytes: int = STREAM_BLOCK_BYTES,
    threads: int | None = None,
    max_shards: int = conv.SHARDS,
    summaries: core.Rules | None = None,
) -> dict:
    """Parse the window's logs into ``shards`` user-aligned Arrow IPC shards plus rejects.

    ``shards=None`` chooses the count from the window's size: ``conv.auto_shards(bytes of the
    window's files, max_shards)``.

    One pass: each block of lines is parsed (C accelerator, else NumPy), split by
    ``shard_of(userid)`` and appended to its shard, so every shard holds its users' events in
    file order, ``(file date, line)``. No sort here: ``compute_shard`` streams a shard through
    the rules and sorts only a shard in which some user's time goes back. Memory holds one
    block. ``threads`` (default ``parse_threads()``) = 2 parses the next block meanwhile.
    Raises ``RejectThresholdExceeded`` after writing everything when rejects exceed
    ``max_reject_rate`` of the rows.

    ``summaries`` (the DAG's rules): plan the shards over the window's per-day summaries instead
    (``summary_shards.plan``: only the days without a summary are parsed, no shard file is written;
    ``mode`` ``summaries``), unless a file holds a time outside its day: then the pass above.
    """
    missing_days = window_missing(root, log_dir, end, window_days)
    files = check_window(log_dir, end, window_days, lookback_days, missing_days)
    if shards is None:
        shards = conv.auto_shards(window_bytes(files), max_shards)
    if shards < 1:
        raise ValueError(f"shards must be >= 1 (got {shards})")
    clear_run(root, end)
    remove_stale_spill_dirs()
    if summaries is not None:
        from include.online_time.summary_shards import plan

        planned = plan(root, files, shards, summaries, block_bytes)
        if planned is not None:
            return _summaries_partition(root, end, window_days, lookback_days, files, missing_days, summaries,
                                        planned, max_reject_rate)
    tally, rows = _event_shards(root, end, files, shards, block_bytes, threads)
    shard_list = [{"index": i, "path": conv.shard_path(end, i), "rows": rows[i]} for i in range(shards)]
    return _write_partition(root, end, tally.rejects(), max_reject_rate, window_days=window_days,
                            lookback_days=lookback_days, shards=shard_list, rows_in=tally.rows_in,
                            rows_parsed=tally.rows_parsed, files=files, missing_days=missing_days)


def _event_shards(root: DataRoot, end: date, files: list[str], shards: int, block_bytes: int,
                  threads: int | None) -> tuple[BlockTally, list[int]]:
    """The files' events appended to their users' shard files in one pass: ``(tally, rows per shard)``."""
    threads = parse_threads() if threads is None else threads
    tally = BlockTally()
    out = _ShardFiles(root, end, shards)
    gen = parsed_blocks(files, block_bytes)
    blocks = prefetch(gen, threads)
    try:
        for fi, p in blocks:
            tally.add(files[fi], p)
            if not len(p.userid):
                continue
            if shards == 1:
                out.write(0, [column(p.userid, pa.int64()), column(p.logtime, _TS), column(p.action, pa.int8())])
                continue
            *cols, bounds = core.split_by_shard(p.userid, p.logtime, p.action, shards)
            for i in range(shards):
                a, b = bounds[i], bounds[i + 1]
                if a < b:
                    out.write(i, [column(cols[0][a:b], pa.int64()), column(cols[1][a:b], _TS),
                                  column(cols[2][a:b], pa.int8())])
        out.close()
    except BaseException:
        out.abort()
        raise
    finally:
        blocks.close()  # waits for a parse still running in the second thread
        gen.close()
    return tally, out.rows


def _write_partition(root: DataRoot, end: date, rej: pa.Table, max_reject_rate: float, **fields) -> dict:
    """``rejects.parquet`` and the manifest ``partition.json`` (``fields`` with the rejects' count and path); then
    ``RejectThresholdExceeded`` when the rejects pass the threshold."""
    rejects_path = conv.online_time_path(end, "rejects.parquet")
    root.write_table(rej, rejects_path)
    result = {"end": end.isoformat(), "run_dir": conv.online_time_path(end), **fields, "rejects": rej.num_rows,
              "rejects_path": rejects_path}
    root.write_json(result, conv.online_time_path(end, "partition.json"))
    check_reject_rate(rej.num_rows, result["rows_in"], max_reject_rate, root.uri(rejects_path))
    return result


def _summaries_partition(root: DataRoot, end: date, window_days: int, lookback_days: int, files: list[str],
                         missing_days: list[dict], rules: core.Rules, planned: dict, max_reject_rate: float) -> dict:
    """The manifest of a window planned over day summaries (``mode`` ``summaries``: ``days`` lists the
    summaries, ``rules`` their rules, for ``verify``)."""
    rej = planned["rejects"] if planned["rejects"] is not None else REJECT_SCHEMA.empty_table()
    return _write_partition(
        root, end, rej, max_reject_rate, window_days=window_days, lookback_days=lookback_days,
        shards=planned["shards"], mode="summaries", rows_in=planned["rows_in"], rows_parsed=planned["rows_parsed"],
        files=files, missing_days=missing_days, days=planned["days"],
        rules=[rules.min_gap, rules.timeout, rules.post_multiplier],
        days_parsed=planned["days_parsed"], days_reused=planned["days_reused"])
