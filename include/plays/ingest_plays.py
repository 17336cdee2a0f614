"""Task ``plays.ingest_plays``: snapshot day D's plays from Redis into the data root, validate,
quarantine, categorise and number them (CONTRACT §2, §5)."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa

from include.plays.categories import resolve_kids
from include.plays.play_ids import release_reservation, reserve_ids
from include.plays.store import chunks, encode_mixed, read_frame, write_frame
from include.storage import DataRoot
from video_analytics import plays as core
from video_analytics.conventions import TABLE_KEYS, endlist_key, plays_path, table_key


class _Counter:
    """Counts Redis round trips."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, result=None):
        self.n += 1
        return result


def _raw_client(redis):
    """A sibling client on the same server/db that returns bytes (cheaper to parse, fed to ujson).

    RESP2: redis-py's pure-Python parser reads it ~20% faster than RESP3 for large MGET replies."""
    from include.settings import sibling_client

    return sibling_client(redis, decode_responses=False, protocol=2)


def _fetch_plays(raw, keys: list[str], batch: int, rt: _Counter) -> tuple[list, list, list]:
    s_out: list = []
    j_out: list = []
    z_out: list = []
    for chunk in chunks(keys, batch):
        p = raw.pipeline(transaction=False)
        p.mget([k + "_S" for k in chunk])
        p.mget([k + "_J" for k in chunk])
        p.mget([k + "_z1" for k in chunk])
        s, j, z = rt(p.execute())
        s_out.extend(s)
        j_out.extend(j)
        z_out.extend(z)
    return s_out, j_out, z_out


def _snapshot_tables(redis, day: str, rt: _Counter) -> pd.DataFrame:
    p = redis.pipeline(transaction=False)
    for name in TABLE_KEYS:
        p.hgetall(table_key(name, day))
    res = rt(p.execute())
    rows = [(t, f, v) for t, h in zip(TABLE_KEYS, res, strict=True) for f, v in h.items()]
    return pd.DataFrame(rows, columns=["table", "field", "value"], dtype=object)


def ingest_plays(root: DataRoot, redis, mysql_hook, day: str, mongo_db=None, batch: int = 5000) -> dict:
    """Snapshot day D's plays from Redis into the data root, validate, categorise and number them.

    Re-running keeps what earlier runs archived (union), reuses their play ids and categories, and
    gives new ids only to new keys.
    """
    t0 = time.perf_counter()
    root.remove(plays_path(day, "rollup.json"))  # the day is not done again until it is rolled up
    rt = _Counter()
    raw = _raw_client(redis)
    endlist = rt(redis.lrange(endlist_key(day), 0, -1))
    uniq = list(dict.fromkeys(endlist))
    duplicates = len(endlist) - len(uniq)

    if root.exists(plays_path(day, "snapshot", "plays_raw.parquet")):
        prev = root.read_table(plays_path(day, "snapshot", "plays_raw.parquet"))
        keys = prev.column("key").to_pylist()
        s_raw, j_raw, z_raw = (prev.column(c).to_pylist() for c in ("S", "J", "z1"))
        del prev
    else:
        keys, s_raw, j_raw, z_raw = [], [], [], []
    seen = set(keys)
    new_keys = [k for k in uniq if k not in seen]
    s, j, z = _fetch_plays(raw, new_keys, batch, rt)
    keys += new_keys
    s_raw += s
    j_raw += j
    z_raw += z
    del s, j, z
    run_id = uuid.uuid4().hex
    write_frame(root, pd.DataFrame({"key": endlist}, dtype=object), plays_path(day, "snapshot", "endlist.parquet"),
           schema={"key": pa.string()})
    write_frame(root, pd.DataFrame({"key": keys, "S": s_raw, "J": j_raw, "z1": z_raw}, dtype=object),
           plays_path(day, "snapshot", "plays_raw.parquet"),
           schema={"key": pa.string(), "S": pa.binary(), "J": pa.binary(), "z1": pa.binary()})
    tables_df = _snapshot_tables(redis, day, rt)
    write_frame(root, tables_df, plays_path(day, "snapshot", "tables.parquet"),
           schema={"table": pa.string(), "field": pa.string(), "value": pa.string()})
    t_snap = time.perf_counter()

    plays, quarantine, segtab = core.decode_plays(keys, s_raw, j_raw, z_raw, day)
    del s_raw, j_raw, z_raw
    t_decode = time.perf_counter()

    # categories: the day's stored answers first, then cache / MySQL for new vids
    stored: dict[str, str] = {}
    sources: dict[str, str] = {}
    if root.exists(plays_path(day, "kids.parquet")):
        kdf = read_frame(root, plays_path(day, "kids.parquet"))
        stored = dict(zip(kdf["vid"].tolist(), kdf["kid"].tolist(), strict=True))
        sources = dict(zip(kdf["vid"].tolist(), kdf["source"].tolist(), strict=True))
    need = [v for v in pd.unique(plays["vid"]).tolist() if v not in stored]
    kids, from_mysql, kstats = resolve_kids(redis, mysql_hook, need, batch) if need else (
        {}, set(), {"kid_cache_hits": 0, "kid_mysql_lookups": 0, "kid_mysql_queries": 0, "round_trips": 0})
    rt.n += kstats.pop("round_trips")
    for v in kids:
        sources[v] = "mysql" if v in from_mysql else "cache"
    stored.update(kids)
    write_frame(root, pd.DataFrame({"vid": list(stored), "kid": [stored[v] for v in stored],
                               "source": [sources.get(v, "cache") for v in stored]}, dtype=object),
           plays_path(day, "kids.parquet"), schema={"vid": pa.string(), "kid": pa.string(), "source": pa.string()})
    plays["kid"] = plays["vid"].map(stored).astype(object)
    bad_kid = core.kid_reasons(plays["vid"], stored)
    if bad_kid.any():
        bk = plays[bad_kid]
        raw_tab = root.read_table(plays_path(day, "snapshot", "plays_raw.parquet")).take(pa.array(bk["pos"].to_numpy()))
        extra = pd.DataFrame({"key": bk["key"].tolist(), "reason": "bad_kid",
                              "S": raw_tab.column("S").to_pylist(), "J": raw_tab.column("J").to_pylist(),
                              "z1": raw_tab.column("z1").to_pylist()})
        quarantine = pd.concat([quarantine, extra], ignore_index=True)
        plays = plays[~bad_kid].reset_index(drop=True)

    # play ids: reuse this day's earlier allocation, reserve new ones for the rest (in T_endlist_D order)
    if root.exists(plays_path(day, "allocation.parquet")):
        alloc = read_frame(root, plays_path(day, "allocation.parquet"))
    else:
        alloc = pd.DataFrame({"key": pd.Series([], dtype=object), "vid": pd.Series([], dtype=object),
                              "playid": pd.Series([], dtype=np.int64)})
    playid = np.zeros(len(plays), dtype=np.int64)
    is_new = np.ones(len(plays), dtype=bool)
    if len(alloc):
        prev_ids = plays["key"].map(dict(zip(alloc["key"].tolist(), alloc["playid"].tolist(), strict=True)))
        is_new = prev_ids.isna().to_numpy()
        playid[~is_new] = prev_ids[~is_new].to_numpy(dtype=np.int64)
    newp = plays.loc[is_new, ["key", "vid"]]
    astats: dict = {}
    if len(newp):
        counts = {str(k): int(v) for k, v in newp["vid"].value_counts(sort=False).items()}
        before, astats = reserve_ids(redis, root, counts, day, mongo_db, batch)
        rt.n += astats.pop("round_trips")
        ids = core.allocate_ids(newp["vid"].astype(object).reset_index(drop=True), before)
        playid[is_new] = ids
        alloc = pd.concat([alloc, pd.DataFrame({"key": newp["key"].to_numpy(dtype=object),
                                                "vid": newp["vid"].to_numpy(dtype=object), "playid": ids})],
                          ignore_index=True)
        write_frame(root, alloc, plays_path(day, "allocation.parquet"),
               schema={"key": pa.string(), "vid": pa.string(), "playid": pa.int64()})
        release_reservation(redis, day)
    plays["playid"] = playid
    t_ids = time.perf_counter()

    segs = core.play_segments(plays, segtab)
    write_frame(root, segs, plays_path(day, "segments.parquet"))
    out = plays.drop(columns=["jcode"])
    out = encode_mixed(out, list(core.TEXT_DOC_FIELDS.values()))
    write_frame(root, out, plays_path(day, "plays.parquet"), schema={"zz_uinfo": pa.string(), "Htmap": pa.string(),
                                                          "key": pa.string(), "vid": pa.string(),
                                                          "uid": pa.string(), "kid": pa.string(),
                                                          "region": pa.string(), "ipkey": pa.string()})
    write_frame(root, quarantine, plays_path(day, "quarantine.parquet"),
           schema={"key": pa.string(), "reason": pa.string(), "S": pa.binary(), "J": pa.binary(),
                   "z1": pa.binary()})
    reasons = quarantine["reason"].value_counts().to_dict() if len(quarantine) else {}
    report = {
        "day": day, "run_id": run_id, "snapshotted": len(keys), "read_now": len(endlist),
        "new_keys": len(new_keys), "unique": len(keys), "duplicates": duplicates,
        "ingested": int(len(plays)), "quarantined": int(len(quarantine)),
        "quarantine_reasons": {str(k): int(v) for k, v in reasons.items()},
        "quarantine_path": root.uri(plays_path(day, "quarantine.parquet")),
        "distinct_segment_values": len(segtab.htmap),
        "kid_cache_hits": kstats["kid_cache_hits"], "kid_mysql_lookups": kstats["kid_mysql_lookups"],
        "kid_mysql_queries": kstats["kid_mysql_queries"],
        "new_play_ids": int(is_new.sum()), **astats,
        "redis_round_trips": rt.n,
        "seconds": {"snapshot": round(t_snap - t0, 3), "decode": round(t_decode - t_snap, 3),
                    "ids": round(t_ids - t_decode, 3), "total": round(time.perf_counter() - t0, 3)},
    }
    root.write_json(report, plays_path(day, "ingest.json"))
    return report
