"""Task ``plays.ingest_plays``: snapshot day D's plays from Redis into the data root, validate,
quarantine, categorise and number them (CONTRACT §2, §5).

Streamed in chunks of ``chunk`` unique keys so that memory stays bounded whatever the size of the day.
One ``IngestRun`` (``ingest_run``) goes through the stages, one module each:

1. ``ingest_keys``: ``T_endlist_D`` read with ranged ``LRANGE`` calls into local Arrow files, not memory,
   deduplicated keeping first occurrences; keys an earlier run archived come first (the union), then the new
   ones in ``T_endlist_D`` order.
2. ``ingest_decode``: pass 1, the raw snapshot, decoding, validation and quarantine, chunk by chunk.
3. ``ingest_ids``: categories of the day's distinct vids, then one atomic id reservation.
4. ``ingest_write``: pass 2, kid and play id filled in, ``plays.parquet`` and ``allocation.parquet``; here,
   in a thread alongside it, the decoders' segment sums merged into ``segments.parquet``.
5. Here: the day tables' snapshot (read in a thread during pass 1 on a day of up to 2M plays) and the report
   (``ingest.json``).
"""

from __future__ import annotations

import contextvars
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.plays.baseline import refuse_counted_day
from include.plays.decoders import QUARANTINE_SCHEMA, Counter, iter_ipc_batches
from include.plays.ingest_decode import pass1, start_decoders
from include.plays.ingest_ids import day_kids, reserve
from include.plays.ingest_keys import LRANGE_STEP, day_keys
from include.plays.ingest_run import IngestRun
from include.plays.ingest_write import pass2
from include.plays.lease import ensure_held
from include.plays.store import ParquetStream
from include.procs import (
    INGEST_SPILL_PREFIX,
    SMALL_DAY_PLAYS,
    lean_memory,
    remove_stale_spill_dirs,
    spill_dir,
)
from include.storage import DataRoot
from video_analytics.conventions import TABLE_KEYS, plays_path, table_key
from video_analytics.play_decode import SEG_SCHEMA
from video_analytics.play_fast import merge_sorted_sums

CHUNK = 20_000          # unique keys decoded at once (bounds memory)
MGET_BATCH = 2_000      # keys per round trip (3 MGETs): Redis's replies stay small enough to reuse warm memory

__all__ = ["CHUNK", "LRANGE_STEP", "MGET_BATCH", "ingest_plays"]


def _raw_client(redis):
    """A sibling client on the same server/db that returns bytes (cheaper to parse, fed to ujson)."""
    from include.settings import sibling_client

    return sibling_client(redis, decode_responses=False, protocol=2)


def ingest_plays(root: DataRoot, redis, mysql_hook, day: str, mongo_db=None, batch: int = MGET_BATCH,
                 chunk: int = CHUNK, lrange_step: int = LRANGE_STEP, workers: int | None = None) -> dict:
    """Snapshot day D's plays from Redis into the data root, validate, categorise and number them.

    Re-running keeps what earlier runs archived (union), reuses their play ids and categories, and
    gives new ids only to new keys. Memory is bounded by ``chunk`` (unique keys decoded at once) plus
    8 bytes per key of the day (its hash, while deduplicating). ``workers`` decoder processes (default: 2 on a
    machine with two or more cores, when the day has more than one chunk of keys; 0 or 1: in-process).
    """
    refuse_counted_day(root, day)
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    lean_memory()
    t0 = time.perf_counter()
    root.remove(plays_path(day, "rollup.json"))  # the day is not done again until it is rolled up
    remove_stale_spill_dirs()
    spill = spill_dir(INGEST_SPILL_PREFIX, f"{day}-")
    pool = start_decoders(workers)
    try:
        run = IngestRun(root=root, redis=redis, raw=_raw_client(redis), mysql_hook=mysql_hook, day=day,
                        mongo_db=mongo_db, batch=batch, chunk=chunk, lrange_step=lrange_step, workers=workers,
                        spill=spill, pool=pool, rt=Counter(), t0=t0)
        return _ingest(run)
    finally:
        if pool is not None:
            pool.close(kill=True)  # already closed after pass 1, unless it failed before
        shutil.rmtree(spill, ignore_errors=True)


def _ingest(run: IngestRun) -> dict:
    root = run.root
    day_keys(run)
    quar = ParquetStream(root, run.rel("quarantine.parquet"), QUARANTINE_SCHEMA, dictionary=["reason"])
    try:
        _pass1_and_tables(run, quar)
        run.times["snap"] = time.perf_counter()
        day_kids(run)
        reserve(run)
        run.times["ids"] = time.perf_counter()
        with ThreadPoolExecutor(1, thread_name_prefix="ingest-segments") as pool:  # alongside pass 2
            segments = pool.submit(contextvars.copy_context().run, _write_segments, run)
            pass2(run, quar)
            segments.result()
        quar.close()
    except BaseException:
        quar.abort()
        raise
    report = _report(run)
    root.write_json(report, run.rel("ingest.json"))
    return report


def _pass1_and_tables(run: IngestRun, quar: ParquetStream) -> None:
    """Pass 1, and ``snapshot/tables.parquet``: read from Redis in a thread alongside pass 1 on a day of up to
    ``SMALL_DAY_PLAYS`` plays (at 1M: 0.1–0.3 s less), after it on a bigger one (at 5M the tables' ~0.5M entries
    take ~140 MiB as Python objects, on top of pass 1's peak)."""
    rt = Counter()  # its own: ``run.rt`` is counted on this thread
    alongside = run.n_prev + run.n_new <= SMALL_DAY_PLAYS
    with ThreadPoolExecutor(1, thread_name_prefix="ingest-tables") as pool:
        tables = pool.submit(contextvars.copy_context().run, _day_tables, run, rt) if alongside else None
        pass1(run, quar)
        tab = tables.result() if tables is not None else _day_tables(run, rt)
    run.root.write_table(tab, run.rel("snapshot", "tables.parquet"))
    run.rt.n += rt.n


def _write_segments(run: IngestRun) -> None:
    """``segments.parquet``: the decoders' sums merged block by block of vids (sorted, one row per (vid,
    segment)), the vids without a usable kid left out."""
    bad = pa.array(sorted(run.bad_kid), pa.string())
    parts = [iter_ipc_batches(p) for p in run.segment_parts]
    ensure_held()
    with ParquetStream(run.root, run.rel("segments.parquet"), SEG_SCHEMA) as out:  # all dictionary: as vid_seg
        for block in merge_sorted_sums(parts):
            out.write(block.filter(pc.invert(pc.is_in(block.column("vid"), value_set=bad))) if len(bad) else block)


def _report(run: IngestRun) -> dict:
    """``ingest.json``."""
    n = run.n_prev + run.n_new
    t_snap, t_ids = run.times["snap"], run.times["ids"]
    return {
        "day": run.day, "run_id": run.run_id, "snapshotted": n, "read_now": run.n_read, "new_keys": run.n_new,
        "unique": n, "duplicates": run.n_read - run.n_uniq, "ingested": run.ingested,
        "quarantined": run.n_quarantined, "quarantine_reasons": run.reasons,
        "quarantine_path": run.root.uri(run.rel("quarantine.parquet")),
        "distinct_segment_values": run.distinct_j, "chunks": len(run.spills), "chunk": run.chunk,
        "decoder_processes": run.decoder_processes, "decoder_peak_rss_mb": round(run.dec_rss, 1),
        "kid_cache_hits": run.kstats["kid_cache_hits"], "kid_mysql_lookups": run.kstats["kid_mysql_lookups"],
        "kid_mysql_queries": run.kstats["kid_mysql_queries"],
        "new_play_ids": run.new_ids, **run.astats,
        "tables_from_snapshot": run.tables_from_snapshot,
        "redis_round_trips": run.rt.n, "redis_round_trips_in_workers": run.rt_workers,
        "seconds": {"snapshot_and_decode": round(t_snap - run.t0, 3), "waiting_for_redis": round(run.t_fetch, 3),
                    "ids": round(t_ids - t_snap, 3), "total": round(time.perf_counter() - run.t0, 3)},
    }


def _snapshot_tables(redis, day: str, rt: Counter) -> pd.DataFrame:
    p = redis.pipeline(transaction=False)
    for name in TABLE_KEYS:
        p.hgetall(table_key(name, day))
    res = rt(p.execute())
    rows = [(t, f, v) for t, h in zip(TABLE_KEYS, res, strict=True) for f, v in h.items()]
    return pd.DataFrame(rows, columns=["table", "field", "value"], dtype=object)


def _entry_ids(tab: pa.Table) -> pa.ChunkedArray:
    return pc.binary_join_element_wise(tab.column("table"), tab.column("field"), "\x00")


def _day_tables(run: IngestRun, rt: Counter) -> pa.Table:
    """``snapshot/tables.parquet``, entry by entry: the value Redis has now, else the stored snapshot's, so a
    value once read is never replaced by nothing (CONTRACT §2). Sets ``run.tables_from_snapshot``: the entries
    taken from the snapshot alone, per table, with up to 10 of their fields."""
    df = _snapshot_tables(run.redis, run.day, rt)
    now = pa.table({c: pa.array(df[c].tolist(), pa.string()) for c in ("table", "field", "value")})
    rel = run.rel("snapshot", "tables.parquet")
    if not run.root.exists(rel):
        return now
    stored = run.root.read_table(rel).select(["table", "field", "value"]).cast(now.schema)
    kept = stored.filter(pc.invert(pc.is_in(_entry_ids(stored), value_set=_entry_ids(now).combine_chunks())))
    for t in TABLE_KEYS:
        fields = kept.filter(pc.equal(kept.column("table"), t)).column("field")
        if len(fields):
            run.tables_from_snapshot[t] = {"entries": len(fields), "fields": fields.slice(0, 10).to_pylist()}
    return pa.concat_tables([now, kept]) if kept.num_rows else now
