"""``ingest_plays``, step 1: ``T_endlist_D`` read into local Arrow key files and deduplicated, and the keys
not in an earlier snapshot of the day picked out. No key is held in memory on a first run (8 bytes a key
for its hash)."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.plays.decoders import Counter
from include.plays.ingest_run import IngestRun
from include.plays.mget import lrange_array
from include.plays.store import ParquetStream, iter_batches, stored_rows
from video_analytics.conventions import endlist_key
from video_analytics.play_fast import key_hashes

LRANGE_STEP = 100_000   # T_endlist_D entries per LRANGE
KEY_SCHEMA = pa.schema([("key", pa.string())])


def read_endlist(raw, name: str, step: int, rt: Counter, out: ParquetStream, spill: str) -> np.ndarray:
    """``T_endlist_D`` by ranged LRANGE calls of ``step`` entries (UTF-8 checked): each part is appended to
    ``out`` (the snapshot's ``endlist.parquet``) and to the local Arrow file ``spill``, not kept in memory.
    Returns a 64-bit hash per entry (8 bytes a key)."""
    hashes = []
    start = 0
    with pa.ipc.new_file(spill, KEY_SCHEMA) as w:
        while True:
            vals = rt(lrange_array(raw, name, start, start + step - 1))
            n = len(vals)
            if n:
                part = vals.cast(pa.string())
                hashes.append(key_hashes(part))
                del vals
                out.write(pa.table({"key": part}))
                w.write_batch(pa.record_batch([part], schema=KEY_SCHEMA))
                del part
            if n < step:
                break
            start += step
    return np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)


def key_batches(path: str):
    """The key arrays of a local Arrow file, one batch at a time (read, not mapped: only the batch at hand is
    resident)."""
    with pa.OSFile(path, "rb") as fh:
        r = pa.ipc.open_file(fh)
        for i in range(r.num_record_batches):
            yield r.get_batch(i).column(0)


def key_chunks(path: str, chunk: int):
    """The keys of a local Arrow file as lists of ``chunk`` strings (the last one shorter)."""
    buf: list[str] = []
    for arr in key_batches(path):
        buf.extend(arr.to_pylist())
        while len(buf) >= chunk:
            yield buf[:chunk]
            del buf[:chunk]
    if buf:
        yield buf


def write_keys(path: str, parts) -> None:
    """Key arrays into a local Arrow file."""
    with pa.ipc.new_file(path, KEY_SCHEMA) as w:
        for part in parts:
            w.write_batch(pa.record_batch([part], schema=KEY_SCHEMA))


def first_occurrences(src: str, hashes: np.ndarray, dst: str) -> int:
    """The keys of the local Arrow file ``src`` without repeats, first occurrences in file order, written to
    ``dst``; returns their number. Exact, with about 30 bytes a key of memory and none for the keys themselves
    (one batch at a time): the 64-bit ``hashes`` (one per key) sorted find the candidates, and every key
    sharing a hash with a repeat is compared as a string."""
    order = np.argsort(hashes, kind="stable")
    sorted_h = hashes[order]
    rep = np.zeros(len(hashes), dtype=bool)
    rep[order[1:]] = sorted_h[1:] == sorted_h[:-1]  # stable: the first of equal hashes is not a repeat
    del order, sorted_h
    check = np.isin(hashes, np.unique(hashes[rep])) if rep.any() else None  # every key with such a hash
    if check is not None:
        rep[check] = False  # decided below, by string
    seen: set[str] = set()
    n = at = 0
    with pa.ipc.new_file(dst, KEY_SCHEMA) as w:
        for part in key_batches(src):
            k = len(part)
            drop = rep[at: at + k]
            if check is not None:
                local = np.flatnonzero(check[at: at + k])
                for p, key in zip(local.tolist(), part.take(pa.array(local)).to_pylist(), strict=True):
                    drop[p] = key in seen
                    seen.add(key)
            kept = part if not drop.any() else part.filter(pa.array(~drop))
            w.write_batch(pa.record_batch([kept], schema=KEY_SCHEMA))
            n += len(kept)
            at += k
    return n


class MissingInput(LookupError):
    """``T_endlist_D`` does not exist and the day's snapshot holds no plays: nothing to ingest."""


def day_keys(run: IngestRun) -> None:
    """Step 1: ``T_endlist_D`` read and deduplicated, and the keys not in an earlier snapshot of the day
    written to ``run.new_keys``. Sets ``n_read``, ``n_uniq``, ``n_prev`` (earlier snapshot), ``n_new`` and
    ``old_id``: the play id of an earlier allocation per snapshot position (0: none), or ``None`` when the day
    has no earlier allocation.

    Without ``T_endlist_D`` (Redis keeps no empty list) the day goes on from its stored snapshot, which is
    left as it is, or fails with ``MissingInput`` when that holds no plays (CONTRACT §2). The snapshot's
    ``endlist.parquet`` never loses keys: when the list read now is shorter, the stored keys it lacks are
    kept after it."""
    root, spill = run.root, run.spill
    read, uniq, new = (os.path.join(spill, f) for f in ("read.keys", "unique.keys", "new.keys"))
    end_rel = run.rel("snapshot", "endlist.parquet")
    end_w = ParquetStream(root, end_rel, KEY_SCHEMA, dictionary=[])  # unique keys: a dictionary only costs memory
    try:
        hashes = read_endlist(run.raw, endlist_key(run.day), run.lrange_step, run.rt, end_w, read)
        run.n_read = len(hashes)
        if not run.n_read:
            end_w.abort()
            _from_snapshot(run, new)
            return
        run.n_uniq = first_occurrences(read, hashes, uniq)
        del hashes
        os.remove(read)
        if stored_rows(root, end_rel) > run.n_read:
            _keep_stored_keys(root, end_rel, uniq, end_w)
        end_w.close()
    except BaseException:
        end_w.abort()
        raise
    if not root.exists(run.snap_rel):
        os.rename(uniq, new)
        run.n_prev, run.n_new = 0, run.n_uniq
        return
    # a re-run: the earlier snapshot's keys come first (the union), then the new ones in T_endlist_D order
    prev_keys = _snapshot_keys(run)
    every = pa.chunked_array(list(key_batches(uniq)), type=pa.string())
    os.remove(uniq)
    fresh = every.filter(pc.invert(pc.is_in(every, value_set=prev_keys))) if len(prev_keys) else every
    del every
    run.n_prev, run.n_new = len(prev_keys), len(fresh)
    write_keys(new, fresh.chunks)
    _old_ids(run, [prev_keys, *fresh.chunks])


def _snapshot_keys(run: IngestRun) -> pa.Array:
    return run.root.read_table(run.snap_rel, columns=["key"]).column("key").combine_chunks()


def _old_ids(run: IngestRun, keys: list[pa.Array]) -> None:
    """``run.old_id`` for the snapshot's ``keys`` (in order) from the day's earlier allocation, if any."""
    alloc_rel = run.rel("allocation.parquet")
    if run.root.exists(alloc_rel):
        alloc = run.root.read_table(alloc_rel, columns=["key", "playid"])
        if alloc.num_rows:
            every = pa.chunked_array(keys, type=pa.string())
            run.old_id = pc.fill_null(pc.take(alloc.column("playid"),
                                              pc.index_in(every, value_set=alloc.column("key"))), 0).to_numpy()


def _from_snapshot(run: IngestRun, new: str) -> None:
    """No ``T_endlist_D``: the day's stored snapshot alone, or ``MissingInput``."""
    n = stored_rows(run.root, run.snap_rel)
    if not n:
        raise MissingInput(f"{endlist_key(run.day)} does not exist in Redis and "
                           f"{run.root.uri(run.snap_rel)} holds no plays: nothing to ingest for {run.day} "
                           "(a mistyped date, or a Redis that lost its data?)")
    run.n_uniq = 0
    run.n_prev, run.n_new = n, 0
    write_keys(new, [])
    _old_ids(run, [_snapshot_keys(run)])


def _keep_stored_keys(root, end_rel: str, uniq: str, end_w: ParquetStream) -> None:
    """The stored ``endlist.parquet`` entries whose keys the list read now (``uniq``) lacks, appended."""
    now = pa.chunked_array(list(key_batches(uniq)), type=pa.string()).combine_chunks()
    for b in iter_batches(root, end_rel, LRANGE_STEP):
        keys = b.column(0)
        end_w.write(pa.table({"key": keys.filter(pc.invert(pc.is_in(keys, value_set=now)))}))
