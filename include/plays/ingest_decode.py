"""``ingest_plays``, pass 1: per chunk, the raw values (the earlier snapshot's for archived keys, pipelined
``MGET`` of ``K_S``/``K_J``/``K_z1`` for new ones, fetched and decoded by the decoder processes of
``include.plays.decoders``, or in-process with a prefetching thread) are appended to the new snapshot as a
row group, decoded and validated; quarantined plays go to ``quarantine.parquet``; valid ones are spilled to a
local Arrow file, with the play id of an earlier allocation or, for a new play, minus its rank among the
vid's new plays; the day's per-(vid, segment) sums are kept (exact integers, ``SegmentSums``)."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time

import numpy as np
import pyarrow as pa

from include.plays.decoders import (
    RAW_SCHEMA,
    DecoderPool,
    client_spec,
    decode_chunk,
    fetch_plays,
    new_sums,
    read_ipc,
    write_sums,
)
from include.plays.ingest_keys import key_chunks
from include.plays.ingest_run import IngestRun
from include.plays.slots import RAW_SLOTS_PER_DECODER, check_slot, overwrite_ipc, raw_slot, slot_retires
from include.plays.store import ParquetStream, iter_batches
from include.procs import heap_reused

log = logging.getLogger(__name__)

# the raw snapshot (~2.4 KB a realistic play; a realistic K_J repeats itself): zstd level 3 writes it in less
# CPU than level 1 (its longer matches: 1.9 against 2.6 us a play) and 33x smaller (21x; snappy 4.6x); no
# dictionary, no statistics for the raw values (bench/README, thirteenth round)
SNAPSHOT_OPTIONS = {"dictionary": [], "compression": "zstd", "compression_level": 3, "write_statistics": ["key"]}



def _earlier_batches(run: IngestRun):
    """The earlier snapshot's rows (a re-run), ``run.chunk`` at a time."""
    return iter_batches(run.root, run.snap_rel, run.chunk, columns=RAW_SCHEMA.names) if run.n_prev else iter(())


def _raw_chunks(run: IngestRun):
    """``(start, keys, S, J, z1)`` per chunk, in snapshot order: the earlier snapshot's rows, then new keys."""
    start = 0
    for b in _earlier_batches(run):
        yield start, b.column("key").to_pylist(), *(b.column(c) for c in ("S", "J", "z1"))
        start += b.num_rows
    for keys in key_chunks(run.new_keys, run.chunk):
        yield start, keys, *fetch_plays(run.raw, keys, run.batch, run.rt)
        start += len(keys)


def prefetch(gen, depth: int = 2):
    """Run ``gen`` in a thread, ``depth`` items ahead (Redis I/O overlaps decoding). A consumer that stops early
    (an error, or ``close``) stops the thread too, whatever it was doing: every hand-over gives up once told."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def run():
        try:
            for item in gen:
                if not put(("ok", item)):
                    return
            put(("ok", done))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            put(("err", exc))

    t = threading.Thread(target=run, name="ingest-prefetch", daemon=True)
    t.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "err":
                raise item
            if item is done:
                return
            yield item
    finally:
        stop.set()
        t.join()


def _part(a: np.ndarray | None, start: int, n: int) -> np.ndarray | None:
    return None if a is None else a[start: start + n]


def start_decoders(workers: int) -> DecoderPool | None:
    """A ``DecoderPool`` of ``workers`` processes, launched without waiting (they import while the keys are
    read), or ``None`` when that is not possible here (fewer than two asked for, no process started)."""
    if workers < 2:
        return None
    try:
        return DecoderPool(workers, wait=False)
    except Exception:  # noqa: BLE001 - decode in-process instead
        log.warning("ingest_plays: no decoder processes here, decoding in-process", exc_info=True)
        return None


def _decoders(run: IngestRun):
    """``run.pool`` ready, and the Redis client's spec for it, or ``(None, None)`` (its processes stopped) when
    the day is one chunk or less, or the pool cannot be used here (an unpicklable client, no process started)."""
    pool, run.pool = run.pool, None
    if pool is None:
        return None, None
    if run.n_prev + run.n_new <= run.chunk:
        pool.close(kill=True)
        return None, None
    try:
        spec = client_spec(run.raw)
        pool.ready()
        return pool, spec
    except Exception:  # noqa: BLE001 - decode in-process instead
        pool.close(kill=True)
        log.warning("ingest_plays: no decoder processes here, decoding in-process", exc_info=True)
        return None, None


def _jobs(run: IngestRun, spec):
    """Decoder jobs: the earlier snapshot's rows, then the new keys (fetched by the decoder). An earlier
    snapshot's batch is handed over as the chunk's raw file, written here (``raw_file``): its values never
    become Python objects nor go through the decoder's pipe."""
    i = start = 0
    for b in _earlier_batches(run):
        overwrite_ipc(raw_slot(run.spill, i, run.raw_slots), pa.Table.from_batches([b]).cast(RAW_SCHEMA))
        yield _job(run, spec, i, start, None, b.num_rows)
        i, start = i + 1, start + b.num_rows
    for keys in key_chunks(run.new_keys, run.chunk):
        yield _job(run, spec, i, start, keys, len(keys))
        i, start = i + 1, start + len(keys)


def _job(run: IngestRun, spec, i: int, start: int, keys: list[str] | None, n: int) -> dict:
    return {"i": i, "start": start, "keys": keys, "raw": None, "raw_file": keys is None, "day": run.day,
            "spill": run.spill, "raw_path": raw_slot(run.spill, i, run.raw_slots), "old_id": _part(run.old_id, start, n),
            "batch": run.batch, "redis": spec}


def chunk_results(run: IngestRun):
    """Pass 1's chunk results, in snapshot order (decoder processes when available, else in-process with a
    prefetching thread for Redis). Sets ``run.decoder_processes``, and at the end ``run.segment_parts``: the
    local Arrow files of the day's per-(vid, segment) sums, one per decoder (or one in-process)."""
    pool, spec = _decoders(run)
    run.decoder_processes = len(pool.procs) if pool is not None else 0
    if pool is None:
        sums = new_sums()
        run.raw_slots = 1
        for i, (start, keys, s, j, z) in enumerate(prefetch(_raw_chunks(run))):
            yield decode_chunk({**_job(run, None, i, start, keys, len(keys)), "raw": (s, j, z)}, sums=sums)
        run.segment_parts = [write_sums(sums, os.path.join(run.spill, "sums-0.arrow"))["path"]]
        return
    with pool:
        run.raw_slots = len(pool.procs) * RAW_SLOTS_PER_DECODER
        yield from pool.map(_jobs(run, spec), depth=RAW_SLOTS_PER_DECODER)
        done = pool.finish([{"finish": True, "spill": run.spill, "path": os.path.join(run.spill, f"sums-{w}.arrow")}
                            for w in range(len(pool.procs))])
    run.segment_parts = [d["path"] for d in done]
    run.dec_rss = max([run.dec_rss] + [d["peak_rss_mb"] or 0.0 for d in done])


def _take(run: IngestRun, res: dict, snap: ParquetStream, quar: ParquetStream) -> None:
    """One chunk's result: its raw rows to the snapshot, its quarantined plays to ``quar``, its valid plays'
    spill file and counts into ``run``."""
    base = os.path.join(run.spill, f"{res['i']:06d}")
    snap.write(check_slot(read_ipc(res["raw_path"]), res))  # mapped: no copy of the raw values (~2.3 KB a play)
    if slot_retires(res["i"], run.raw_slots):
        os.remove(res["raw_path"])
    run.rt.n += res["round_trips"]
    if run.decoder_processes:
        run.rt_workers += res["round_trips"]
        run.dec_rss = max(run.dec_rss, res["peak_rss_mb"] or 0.0)
    run.distinct_j += res["distinct_j"]
    if res["quarantined"]:
        quar.write(read_ipc(base + ".bad"))
        os.remove(base + ".bad")
        run.n_quarantined += res["quarantined"]
        run.add_reasons(res["reasons"])
    if not res["plays"]:
        return
    for v in res["vids"]:
        run.vids_seen.setdefault(v)
    for v, c in res["new_counts"].items():
        run.new_count[v] = run.new_count.get(v, 0) + c
    run.mixed |= res["mixed"]
    run.spills.append(base + ".arrow")


def pass1(run: IngestRun, quar: ParquetStream) -> None:
    """Pass 1 over every chunk; the new ``snapshot/plays_raw.parquet`` is published at the end. The day's
    per-(vid, segment) sums are kept by the decoders themselves, added in C as each chunk is decoded, and
    written once at the end (``run.segment_parts``; ``ingest_plays`` merges them)."""
    with heap_reused(), ParquetStream(run.root, run.snap_rel, RAW_SCHEMA, **SNAPSHOT_OPTIONS) as snap:
        src = chunk_results(run)
        while True:
            tf = time.perf_counter()
            res = next(src, None)
            run.t_fetch += time.perf_counter() - tf
            if res is None:
                break
            _take(run, res, snap, quar)
