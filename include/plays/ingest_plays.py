"""Task ``plays.ingest_plays``: snapshot day D's plays from Redis into the data root, validate,
quarantine, categorise and number them (CONTRACT §2, §5).

Streamed in chunks of ``chunk`` unique keys so that memory stays bounded whatever the size of the day:

1. ``T_endlist_D`` is read with ranged ``LRANGE`` calls into local Arrow files, not memory (8 bytes a key
   for its hash); duplicates are dropped keeping first occurrences; keys an earlier run archived come
   first (the union), then the new ones in ``T_endlist_D`` order.
2. Pass 1, per chunk: the raw values (the earlier snapshot's for archived keys, pipelined ``MGET`` of
   ``K_S``/``K_J``/``K_z1`` for new ones, fetched and decoded by the decoder processes of
   ``include.plays.decoders``, or in-process with a prefetching thread) are appended to the new snapshot as a row group, decoded and validated; quarantined plays are
   appended to ``quarantine.parquet``; valid ones are spilled to a local Arrow file, with the play id of
   an earlier allocation or, for a new play, minus its rank among the vid's new plays; the day's
   per-(vid, segment) sums are kept (exact integers, merged at the end).
3. Categories of the day's distinct vids (batched, as before), then one atomic id reservation.
4. Pass 2, per chunk: kid and play id filled in, ``plays.parquet`` and ``allocation.parquet`` row groups.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.plays.categories import resolve_kids
from include.plays.decoders import (
    QUARANTINE_SCHEMA,
    RAW_SCHEMA,
    Counter,
    DecoderPool,
    client_spec,
    decode_chunk,
    fetch_plays,
    read_ipc,
)
from include.plays.play_ids import release_reservation, reserve_ids
from include.plays.store import (
    ParquetStream,
    iter_batches,
    read_frame,
    write_frame,
)
from include.procs import lean_memory, trim_heap
from include.storage import DataRoot
from video_analytics import plays as core
from video_analytics.conventions import TABLE_KEYS, endlist_key, plays_path, table_key
from video_analytics.play_fast import SegmentSums

log = logging.getLogger(__name__)

CHUNK = 20_000          # unique keys decoded at once (bounds memory)
LRANGE_STEP = 100_000   # T_endlist_D entries per LRANGE

KEY_SCHEMA = pa.schema([("key", pa.string())])
ALLOC_SCHEMA = pa.schema([("key", pa.string()), ("vid", pa.string()), ("playid", pa.int64())])
_UNIQUE_COLS = {"pos", "key", "ipkey", "PIP", "PIP__json", "PlayTime", "PlayTime__json", "flow", "comprate",
                "zz_uinfo", "playid"}  # (nearly) one value per play: not dictionary-encoded


def _raw_client(redis):
    """A sibling client on the same server/db that returns bytes (cheaper to parse, fed to ujson)."""
    from include.settings import sibling_client

    return sibling_client(redis, decode_responses=False, protocol=2)


def _read_endlist(raw, name: str, step: int, rt: Counter, out: ParquetStream, spill: str) -> np.ndarray:
    """``T_endlist_D`` by ranged LRANGE calls of ``step`` entries (UTF-8 checked): each part is appended to
    ``out`` (the snapshot's ``endlist.parquet``) and to the local Arrow file ``spill``, not kept in memory.
    Returns a 64-bit hash per entry (8 bytes a key)."""
    hashes = []
    start = 0
    with pa.ipc.new_file(spill, KEY_SCHEMA) as w:
        while True:
            vals = rt(raw.lrange(name, start, start + step - 1))
            n = len(vals)
            if n:
                part = pa.array(vals, type=pa.binary()).cast(pa.string())
                hashes.append(pd.util.hash_array(np.asarray(vals, dtype=object)))
                del vals
                out.write(pa.table({"key": part}))
                w.write_batch(pa.record_batch([part], schema=KEY_SCHEMA))
                del part
            if n < step:
                break
            start += step
    return np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)


def _key_batches(path: str):
    """The key arrays of a local Arrow file, one batch at a time (read, not mapped: only the batch at hand is
    resident)."""
    with pa.OSFile(path, "rb") as fh:
        r = pa.ipc.open_file(fh)
        for i in range(r.num_record_batches):
            yield r.get_batch(i).column(0)


def _key_chunks(path: str, chunk: int):
    """The keys of a local Arrow file as lists of ``chunk`` strings (the last one shorter)."""
    buf: list[str] = []
    for arr in _key_batches(path):
        buf.extend(arr.to_pylist())
        while len(buf) >= chunk:
            yield buf[:chunk]
            del buf[:chunk]
    if buf:
        yield buf


def _first_occurrences(src: str, hashes: np.ndarray, dst: str) -> int:
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
        for part in _key_batches(src):
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


def _snapshot_tables(redis, day: str, rt: Counter) -> pd.DataFrame:
    p = redis.pipeline(transaction=False)
    for name in TABLE_KEYS:
        p.hgetall(table_key(name, day))
    res = rt(p.execute())
    rows = [(t, f, v) for t, h in zip(TABLE_KEYS, res, strict=True) for f, v in h.items()]
    return pd.DataFrame(rows, columns=["table", "field", "value"], dtype=object)


def _raw_chunks(root: DataRoot, snap_rel: str, n_prev: int, new_keys: str, raw, chunk: int, batch: int,
                rt: Counter):
    """``(start, keys, S, J, z1)`` per chunk, in snapshot order: the earlier snapshot's rows, then new keys."""
    start = 0
    if n_prev:
        for b in iter_batches(root, snap_rel, chunk, columns=["key", "S", "J", "z1"]):
            yield start, *(b.column(c).to_pylist() for c in ("key", "S", "J", "z1"))
            start += b.num_rows
    for keys in _key_chunks(new_keys, chunk):
        yield start, keys, *fetch_plays(raw, keys, batch, rt)
        start += len(keys)


def _prefetch(gen, depth: int = 2):
    """Run ``gen`` in a thread, ``depth`` items ahead (Redis I/O overlaps decoding)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def run():
        try:
            for item in gen:
                while not stop.is_set():
                    try:
                        q.put(("ok", item), timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("ok", done))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            q.put(("err", exc))

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


def _json_column(col: pa.Array) -> pa.Array:
    return pa.array([json.dumps(v) for v in col.to_pylist()], type=pa.string())


def _plays_schema(mixed: set[str]) -> pa.Schema:
    """``plays.parquet``: one row per ingested play."""
    fields = [("pos", pa.int64()), ("key", pa.string()), ("vid", pa.string()), ("region", pa.string()),
              ("flow", pa.float64()), ("comprate", pa.float64()), ("ipkey", pa.string()), ("uid", pa.string())]
    fields += [(c + "__json" if c in mixed else c, pa.string()) for c in core.TEXT_DOC_FIELDS.values()]
    fields += [("Htmap", pa.string()), ("zz_uinfo", pa.string()), ("kid", pa.string()), ("playid", pa.int64())]
    return pa.schema(fields)


def ingest_plays(root: DataRoot, redis, mysql_hook, day: str, mongo_db=None, batch: int = 5000,
                 chunk: int = CHUNK, lrange_step: int = LRANGE_STEP, workers: int | None = None) -> dict:
    """Snapshot day D's plays from Redis into the data root, validate, categorise and number them.

    Re-running keeps what earlier runs archived (union), reuses their play ids and categories, and
    gives new ids only to new keys. Memory is bounded by ``chunk`` (unique keys decoded at once) plus
    8 bytes per key of the day (its hash, while deduplicating). ``workers`` decoder processes (default: 2 on a machine with two
    or more cores, when the day has more than one chunk of new keys; 0 or 1: in-process).
    """
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    lean_memory()
    t0 = time.perf_counter()
    root.remove(plays_path(day, "rollup.json"))  # the day is not done again until it is rolled up
    rt = Counter()
    raw = _raw_client(redis)
    spill = tempfile.mkdtemp(prefix=f"ingest_{day}_")
    try:
        return _ingest(root, redis, raw, mysql_hook, day, mongo_db, batch, chunk, lrange_step, rt, t0, spill,
                       workers)
    finally:
        shutil.rmtree(spill, ignore_errors=True)


def _day_keys(root: DataRoot, raw, day: str, lrange_step: int, rt: Counter, spill: str, snap_rel: str):
    """Step 1: ``T_endlist_D`` read and deduplicated, and the keys not in an earlier snapshot of the day written
    to the local Arrow file ``<spill>/new.keys``. Returns ``(read, unique, earlier, new, old_id)``: ``old_id``
    is the play id of an earlier allocation per snapshot position (0: none), or ``None`` when the day has no
    earlier allocation. Without an earlier snapshot no key is held in memory (8 bytes a key for hashes)."""
    read, uniq, new = (os.path.join(spill, f) for f in ("read.keys", "unique.keys", "new.keys"))
    with ParquetStream(root, plays_path(day, "snapshot", "endlist.parquet"), KEY_SCHEMA,
                       dictionary=[]) as end_w:  # unique keys: a dictionary would only cost memory
        hashes = _read_endlist(raw, endlist_key(day), lrange_step, rt, end_w, read)
    n_read = len(hashes)
    n_uniq = _first_occurrences(read, hashes, uniq)
    del hashes
    os.remove(read)
    if not root.exists(snap_rel):
        os.rename(uniq, new)
        return n_read, n_uniq, 0, n_uniq, None
    # a re-run: the earlier snapshot's keys come first (the union), then the new ones in T_endlist_D order
    prev_keys = root.read_table(snap_rel, columns=["key"]).column("key").combine_chunks()
    every = pa.chunked_array(list(_key_batches(uniq)), type=pa.string())
    os.remove(uniq)
    fresh = every.filter(pc.invert(pc.is_in(every, value_set=prev_keys))) if len(prev_keys) else every
    del every
    n_new = len(fresh)
    with pa.ipc.new_file(new, KEY_SCHEMA) as w:
        for part in fresh.chunks:
            w.write_batch(pa.record_batch([part], schema=KEY_SCHEMA))
    alloc_rel = plays_path(day, "allocation.parquet")
    old_id = None
    if root.exists(alloc_rel):
        alloc = root.read_table(alloc_rel, columns=["key", "playid"])
        if alloc.num_rows:
            every = pa.chunked_array([prev_keys, *fresh.chunks], type=pa.string())
            old_id = pc.fill_null(pc.take(alloc.column("playid"), pc.index_in(every, value_set=alloc.column("key"))),
                                  0).to_numpy()
    return n_read, n_uniq, len(prev_keys), n_new, old_id


def _part(a: np.ndarray | None, start: int, n: int) -> np.ndarray | None:
    return None if a is None else a[start: start + n]


def _decoders(workers: int, raw):
    """A ``DecoderPool`` of ``workers`` processes and the Redis client's spec for them, or ``(None, None)``
    when that is not possible here (fewer than two asked for, an unpicklable client, no process started)."""
    if workers < 2:
        return None, None
    try:
        spec = client_spec(raw)
        return DecoderPool(workers), spec
    except Exception:  # noqa: BLE001 - decode in-process instead
        log.warning("ingest_plays: no decoder processes here, decoding in-process", exc_info=True)
        return None, None


def _chunk_results(root, snap_rel, n_prev, new_keys, n_new, raw, chunk, batch, rt, day, spill, old_id, workers,
                   used):
    """Pass 1's chunk results, in snapshot order (decoder processes when available, else in-process with a
    prefetching thread for Redis). ``new_keys``: the local Arrow file of the keys to fetch from Redis."""
    pool, spec = _decoders(workers, raw) if n_new > chunk else (None, None)
    used[0] = len(pool.procs) if pool is not None else 0
    if pool is None:
        for i, (start, keys, s, j, z) in enumerate(
                _prefetch(_raw_chunks(root, snap_rel, n_prev, new_keys, raw, chunk, batch, rt))):
            yield decode_chunk({"i": i, "start": start, "keys": keys, "raw": (s, j, z), "day": day,
                                "spill": spill, "old_id": _part(old_id, start, len(keys)), "batch": batch})
        return

    def jobs():
        """The earlier snapshot's rows (raw values given), then the new keys (fetched by the decoder)."""
        earlier = iter_batches(root, snap_rel, chunk, columns=["key", "S", "J", "z1"]) if n_prev else ()
        parts = [((b.column("key").to_pylist(), tuple(b.column(c).to_pylist() for c in ("S", "J", "z1")))
                  for b in earlier), ((keys, None) for keys in _key_chunks(new_keys, chunk))]
        start = 0
        for i, (keys, raw) in enumerate(p for part in parts for p in part):
            yield {"i": i, "start": start, "keys": keys, "raw": raw, "day": day, "spill": spill,
                   "old_id": _part(old_id, start, len(keys)), "batch": batch, "redis": spec}
            start += len(keys)

    with pool:
        yield from pool.map(jobs())


def _ingest(root, redis, raw, mysql_hook, day, mongo_db, batch, chunk, lrange_step, rt, t0, spill, workers) -> dict:
    snap_rel = plays_path(day, "snapshot", "plays_raw.parquet")
    n_read, n_uniq, n_prev, n_new, old_id = _day_keys(root, raw, day, lrange_step, rt, spill, snap_rel)
    n, duplicates = n_prev + n_new, n_read - n_uniq
    run_id = uuid.uuid4().hex
    alloc_rel = plays_path(day, "allocation.parquet")
    new_keys = os.path.join(spill, "new.keys")
    t_fetch = 0.0
    rt_workers = 0
    dec_rss = 0.0
    spills: list[str] = []
    mixed: set[str] = set()
    vids_seen: dict[str, None] = {}
    new_count: dict[str, int] = {}   # vid -> new plays so far (ranks continue across chunks)
    seg_sums = SegmentSums()
    distinct_j = 0
    n_quarantined = 0
    reasons: dict[str, int] = {}
    quar = ParquetStream(root, plays_path(day, "quarantine.parquet"), QUARANTINE_SCHEMA, dictionary=["reason"])
    try:
        with ParquetStream(root, snap_rel, RAW_SCHEMA, dictionary=["J"]) as snap:
            used = [0]
            src = _chunk_results(root, snap_rel, n_prev, new_keys, n_new, raw, chunk, batch, rt, day, spill,
                                 old_id, workers, used)
            while True:
                tf = time.perf_counter()
                res = next(src, None)
                t_fetch += time.perf_counter() - tf
                if res is None:
                    break
                trim_heap()
                base = os.path.join(spill, f"{res['i']:06d}")
                snap.write(read_ipc(base + ".raw"))
                os.remove(base + ".raw")
                rt.n += res["round_trips"]
                if used[0]:
                    rt_workers += res["round_trips"]
                    dec_rss = max(dec_rss, res["peak_rss_mb"] or 0.0)
                distinct_j += res["distinct_j"]
                if res["quarantined"]:
                    quar.write(read_ipc(base + ".bad"))
                    os.remove(base + ".bad")
                    n_quarantined += res["quarantined"]
                    for r, c in res["reasons"].items():
                        reasons[r] = reasons.get(r, 0) + c
                if not res["plays"]:
                    continue
                seg_sums.add(read_ipc(res["segs"]))  # exact integer sums, added as they come
                os.remove(res["segs"])
                for v in res["vids"]:
                    vids_seen.setdefault(v)
                for v, c in res["new_counts"].items():
                    new_count[v] = new_count.get(v, 0) + c
                mixed |= res["mixed"]
                spills.append(base + ".arrow")
        root.write_table(_tables_table(redis, day, rt), plays_path(day, "snapshot", "tables.parquet"))
        t_snap = time.perf_counter()

        # categories: the day's stored answers first, then cache / MySQL for new vids
        stored: dict[str, str] = {}
        sources: dict[str, str] = {}
        if root.exists(plays_path(day, "kids.parquet")):
            kdf = read_frame(root, plays_path(day, "kids.parquet"))
            stored = dict(zip(kdf["vid"].tolist(), kdf["kid"].tolist(), strict=True))
            sources = dict(zip(kdf["vid"].tolist(), kdf["source"].tolist(), strict=True))
        need = [v for v in vids_seen if v not in stored]
        kids, from_mysql, kstats = resolve_kids(redis, mysql_hook, need, batch) if need else (
            {}, set(), {"kid_cache_hits": 0, "kid_mysql_lookups": 0, "kid_mysql_queries": 0, "round_trips": 0})
        rt.n += kstats.pop("round_trips")
        for v in kids:
            sources[v] = "mysql" if v in from_mysql else "cache"
        stored.update(kids)
        write_frame(root, pd.DataFrame({"vid": list(stored), "kid": [stored[v] for v in stored],
                                        "source": [sources.get(v, "cache") for v in stored]}, dtype=object),
                    plays_path(day, "kids.parquet"),
                    schema={"vid": pa.string(), "kid": pa.string(), "source": pa.string()})
        bad_kid = {v for v in vids_seen if not core.safe_name(stored.get(v, ""))}

        # play ids: one atomic reservation for the new plays of the day (in T_endlist_D order)
        counts = {v: c for v, c in new_count.items() if v not in bad_kid}
        astats: dict = {}
        before: dict[str, int] = {}
        if counts:
            before, astats = reserve_ids(redis, root, counts, day, mongo_db, batch)
            rt.n += astats.pop("round_trips")
        t_ids = time.perf_counter()

        # pass 2: plays.parquet and allocation.parquet
        schema = _plays_schema(mixed)
        ingested = 0
        new_ids = 0
        bad_pos: list[np.ndarray] = []
        alloc_w = ParquetStream(root, plays_path(day, "allocation.parquet"), ALLOC_SCHEMA,
                                dictionary=["vid"]) if counts else None
        try:
            if alloc_w is not None and root.exists(alloc_rel):  # the earlier ids first, as they were
                for b in iter_batches(root, alloc_rel, 1 << 18):
                    alloc_w.write(pa.Table.from_batches([b]))
            with ParquetStream(root, plays_path(day, "plays.parquet"), schema,
                               dictionary=[c for c in schema.names if c not in _UNIQUE_COLS]) as out:
                # per vid with new plays: the last id before the day's reservation, new plays in earlier chunks
                new_vids = pa.array(list(new_count), pa.string())
                before_a = np.fromiter((before.get(v, 0) for v in new_count), dtype=np.int64, count=len(new_count))
                seen_a = np.zeros(len(new_count), dtype=np.int64)
                kid_vids = pa.array(list(stored), pa.string())
                kid_vals = pa.array(list(stored.values()), pa.string())
                bad_vids = pa.array(sorted(bad_kid), pa.string())
                for path in spills:
                    trim_heap()
                    tab = read_ipc(path)
                    pid = tab.column("_pid").to_numpy()
                    new = pid < 0
                    slot = pc.index_in(tab.column("vid"), value_set=new_vids).to_numpy(zero_copy_only=False)
                    offsets = seen_a.copy()  # as in pass 1: ranks continue across chunks
                    if new.any():
                        seen_a += np.bincount(slot[new].astype(np.int64), minlength=len(seen_a))
                    if bad_kid:
                        drop = pc.is_in(tab.column("vid"), value_set=bad_vids).to_numpy(zero_copy_only=False)
                        if drop.any():
                            bad_pos.append(tab.column("pos").to_numpy()[drop])
                            tab = tab.filter(pa.array(~drop))
                            pid, new, slot = pid[~drop], new[~drop], slot[~drop]
                    if not tab.num_rows:
                        continue
                    if new.any():
                        pid = pid.copy()
                        sl = slot[new].astype(np.int64)
                        pid[new] = before_a[sl] + offsets[sl] - pid[new]
                        new_ids += int(new.sum())
                        keep = pa.array(new)
                        alloc_w.write(pa.table({"key": tab.column("key").filter(keep),
                                                "vid": tab.column("vid").filter(keep),
                                                "playid": pa.array(pid[new])}))
                    for c in mixed:
                        if c in tab.column_names:
                            tab = tab.append_column(c + "__json", _json_column(tab.column(c))).drop_columns([c])
                    kid = pc.take(kid_vals, pc.index_in(tab.column("vid"), value_set=kid_vids))
                    tab = tab.append_column("kid", kid)
                    tab = tab.append_column("playid", pa.array(pid)).drop_columns(["_pid"])
                    out.write(tab)
                    ingested += tab.num_rows
            if alloc_w is not None:
                alloc_w.close()
                release_reservation(redis, day)
        except BaseException:
            if alloc_w is not None:
                alloc_w.abort()
            raise
        if bad_pos:  # whole vids whose category is not a usable name: quarantined with their raw values
            pos = np.concatenate(bad_pos)
            extra = root.read_table(snap_rel).take(pa.array(pos))
            quar.write(pa.table({"key": extra.column("key"), "reason": pa.array(["bad_kid"] * len(pos)),
                                 "S": extra.column("S"), "J": extra.column("J"), "z1": extra.column("z1")}))
            n_quarantined += len(pos)
            reasons["bad_kid"] = reasons.get("bad_kid", 0) + len(pos)
        quar.close()
    except BaseException:
        quar.abort()
        raise

    segs = seg_sums.table()
    if bad_kid:
        segs = segs.filter(pc.invert(pc.is_in(segs.column("vid"), value_set=pa.array(sorted(bad_kid), pa.string()))))
    root.write_table(segs, plays_path(day, "segments.parquet"))
    report = {
        "day": day, "run_id": run_id, "snapshotted": n, "read_now": n_read, "new_keys": n_new, "unique": n,
        "duplicates": duplicates, "ingested": ingested, "quarantined": n_quarantined,
        "quarantine_reasons": reasons,
        "quarantine_path": root.uri(plays_path(day, "quarantine.parquet")),
        "distinct_segment_values": distinct_j, "chunks": len(spills), "chunk": chunk,
        "decoder_processes": used[0], "decoder_peak_rss_mb": round(dec_rss, 1),
        "kid_cache_hits": kstats["kid_cache_hits"], "kid_mysql_lookups": kstats["kid_mysql_lookups"],
        "kid_mysql_queries": kstats["kid_mysql_queries"],
        "new_play_ids": new_ids, **astats,
        "redis_round_trips": rt.n, "redis_round_trips_in_workers": rt_workers,
        "seconds": {"snapshot_and_decode": round(t_snap - t0, 3), "waiting_for_redis": round(t_fetch, 3),
                    "ids": round(t_ids - t_snap, 3), "total": round(time.perf_counter() - t0, 3)},
    }
    root.write_json(report, plays_path(day, "ingest.json"))
    return report


def _tables_table(redis, day: str, rt: Counter) -> pa.Table:
    df = _snapshot_tables(redis, day, rt)
    return pa.table({c: pa.array(df[c].tolist(), pa.string()) for c in ("table", "field", "value")})
