"""Play statistics I/O (CONTRACT §2, §4, §5): Redis snapshot, categories, play ids, rollups, publishing.

Data-root layout, per day ``D`` (everything the documents are rebuilt from)::

    plays/D/snapshot/endlist.parquet   key                 T_endlist_D as last read (duplicates included)
    plays/D/snapshot/plays_raw.parquet key, S, J, z1       unique keys, raw values; union over re-runs
    plays/D/snapshot/tables.parquet    table, field, value T_loadtable_D / T_playtable_D / T_regiontable_D
    plays/D/kids.parquet               vid, kid, source    the category each vid was given
    plays/D/allocation.parquet         key, vid, playid    play ids given out (reused on re-runs)
    plays/D/quarantine.parquet         key, reason, S, J, z1
    plays/D/plays.parquet              one row per ingested play (vid, uid, kid, playid, region, flow, ...)
    plays/D/segments.parquet           vid, seg, heat, plays   (the day's HeatMapSum / PlayMapSum)
    plays/D/ingest.json                ingest report
    plays/D/contrib/<kind>.parquet     the day's contributions: vid, vid_region, vid_seg, uid, uid_region,
                                       kid, kid_region
    plays/D/docs/play.parquet          the day's <vid>_play documents (coll, _id, fields)
    plays/D/docs/{vdaily,daily,type,stat}.jsonl   {"coll", "_id", "doc"} per line
    plays/D/rollup.json, plays/D/cleanup.json
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from collections import defaultdict
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from include.storage import DataRoot
from video_analytics import plays as core

log = logging.getLogger(__name__)

KID_HASH = "T_video_kid_info"
PLAYID_HASH = "vid_playid"
TABLES = {"load": "T_loadtable_{day}", "play": "T_playtable_{day}", "region": "T_regiontable_{day}"}
CONTRIB_KINDS = ("vid", "vid_region", "vid_seg", "uid", "uid_region", "kid", "kid_region")
DOC_KINDS = ("vdaily", "daily", "type", "stat")
MYSQL_BATCH = 1000
BULK_BATCH = 10000

_RAISE_LUA = """
local n = 0
for i = 1, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if cur < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); n = n + 1
  end
end
return n
"""


def _d(day: str, *parts: str) -> tuple[str, ...]:
    return ("plays", day, *parts)


def _raw_client(redis):
    """A sibling client on the same server/db that returns bytes (cheaper to parse, fed to ujson)."""
    import redis as redis_mod

    pool = redis.connection_pool
    # RESP2: redis-py's pure-Python parser reads it ~20% faster than RESP3 for large MGET replies
    kwargs = {k: v for k, v in pool.connection_kwargs.items()
              if not k.startswith(("maint_notifications", "orig_", "oss_cluster"))}
    kwargs.update(decode_responses=False, protocol=2)
    return redis_mod.Redis(connection_pool=pool.__class__(connection_class=pool.connection_class, **kwargs))


def category_sql(n: int) -> str:
    """The batch category query for ``n`` vids, with ``n`` ``%s`` placeholders."""
    text = resources.files("include").joinpath("sql/category.sql").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return body.replace("{placeholders}", ",".join(["%s"] * n)).strip()


def _chunks(seq, n):
    for i in range(0, len(seq), n):
        yield seq[i: i + n]


# ---- parquet helpers ---------------------------------------------------------------------------------

def _write(root: DataRoot, df: pd.DataFrame, *parts: str, schema: dict | None = None) -> None:
    arrays, names = [], []
    for c in df.columns:
        typ = (schema or {}).get(c)
        vals = df[c]
        if typ is not None:
            arrays.append(pa.array(vals.tolist() if vals.dtype == object else vals, type=typ))
        else:
            arrays.append(pa.array(vals, from_pandas=True))
        names.append(c)
    root.write_table(pa.Table.from_arrays(arrays, names=names), *parts)


def _read(root: DataRoot, *parts: str, columns=None) -> pd.DataFrame:
    return root.read_table(*parts, columns=columns).to_pandas()


def _encode_mixed(df: pd.DataFrame, cols) -> pd.DataFrame:
    """Columns whose values are not all strings are stored JSON-encoded as ``<col>__json``."""
    for c in cols:
        vals = df[c].tolist()
        if not all(type(v) is str for v in vals):
            df[c + "__json"] = [json.dumps(v) for v in vals]
            df.drop(columns=[c], inplace=True)
    return df


def _decode_mixed(df: pd.DataFrame) -> pd.DataFrame:
    for c in [c for c in df.columns if c.endswith("__json")]:
        df[c[:-6]] = pd.Series([json.loads(v) for v in df[c].tolist()], dtype=object, index=df.index)
        df.drop(columns=[c], inplace=True)
    return df


def _days(root: DataRoot, marker: str) -> list[str]:
    """Days that have ``plays/<day>/<marker>``."""
    return sorted(p.rstrip("/").split("/")[-len(marker.split("/")) - 1] for p in root.glob("plays", "*", marker))


# ---- ingest ------------------------------------------------------------------------------------------

class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, result=None):
        self.n += 1
        return result


def _fetch_plays(raw, keys: list[str], batch: int, rt: _Counter) -> tuple[list, list, list]:
    s_out: list = []
    j_out: list = []
    z_out: list = []
    for chunk in _chunks(keys, batch):
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
    for name in TABLES.values():
        p.hgetall(name.format(day=day))
    res = rt(p.execute())
    rows = [(t, f, v) for t, h in zip(TABLES, res, strict=True) for f, v in h.items()]
    return pd.DataFrame(rows, columns=["table", "field", "value"], dtype=object)


def _tables(df: pd.DataFrame) -> tuple[dict[str, dict[str, int]], int]:
    """``{table: {field: int}}`` and the number of entries that were not integers (taken as 0)."""
    out: dict[str, dict[str, int]] = {t: {} for t in TABLES}
    bad = 0
    for t, f, v in zip(df["table"].tolist(), df["field"].tolist(), df["value"].tolist(), strict=True):
        try:
            out[t][f] = int(v)
        except (TypeError, ValueError):
            try:
                out[t][f] = int(float(v))
            except (TypeError, ValueError, OverflowError):
                out[t][f] = 0
                bad += 1
    return out, bad


def resolve_kids(redis, mysql_hook, vids: list[str], batch: int = 5000) -> tuple[dict[str, str], set, dict]:
    """Category per vid: ``T_video_kid_info`` first (batched HMGET), then one MySQL query per batch of
    misses; answers are written back to the cache. Returns ``(kids, vids answered by MySQL, stats)``."""
    stats = {"kid_cache_hits": 0, "kid_mysql_lookups": 0, "kid_mysql_queries": 0, "round_trips": 0}
    kids: dict[str, str] = {}
    misses: list[str] = []
    for chunk in _chunks(vids, batch):
        vals = redis.hmget(KID_HASH, chunk)
        stats["round_trips"] += 1
        for v, k in zip(chunk, vals, strict=True):
            if k is None:
                misses.append(v)
            else:
                kids[v] = k
    stats["kid_cache_hits"] = len(kids)
    if misses:
        if hasattr(mysql_hook, "log_sql"):
            mysql_hook.log_sql = False  # a batch of 1,000 parameters per statement is not worth logging
        found: dict[str, str] = {}
        for chunk in _chunks(misses, MYSQL_BATCH):
            rows = mysql_hook.get_records(category_sql(len(chunk)), parameters=list(chunk))
            stats["kid_mysql_queries"] += 1
            for vid, kid in sorted(rows or [], key=lambda r: (str(r[0]), r[1] is None, str(r[1]))):
                vid = vid.decode() if isinstance(vid, bytes) else str(vid)
                if vid not in found:
                    found[vid] = core.NOKID if kid is None else (kid.decode() if isinstance(kid, bytes) else str(kid))
        answers = {v: found.get(v, core.NOKID) for v in misses}
        stats["kid_mysql_lookups"] = len(misses)
        for chunk in _chunks(list(answers.items()), batch):
            redis.hset(KID_HASH, mapping=dict(chunk))
            stats["round_trips"] += 1
        kids.update(answers)
    return kids, set(misses), stats


def _root_last_ids(root: DataRoot) -> dict[str, int]:
    """The highest play id the data root has given each vid (all days)."""
    frames = [_read(root, *_d(day, "allocation.parquet"), columns=["vid", "playid"])
              for day in _days(root, "allocation.parquet")]
    if not frames:
        return {}
    df = pd.concat(frames, ignore_index=True)
    if df.empty:
        return {}
    return {k: int(v) for k, v in df.groupby("vid")["playid"].max().items()}


def reserve_ids(redis, root: DataRoot, counts: dict[str, int], mongo_db=None, batch: int = 5000
                ) -> tuple[dict[str, int], dict]:
    """Atomically reserve ``counts[vid]`` ids per vid; returns the id *before* each vid's first new play.

    Continues from ``vid_playid[vid]``; when absent, from the stat document's ``PlayID`` (``mongo_db``) or
    else the data root's own highest id for the vid, else 0 (HSETNX seeds it, HINCRBY reserves, so two days
    processed at once never share an id).
    """
    stats = {"round_trips": 0, "playid_from_redis": 0, "playid_from_stat": 0, "playid_from_root": 0,
             "playid_from_zero": 0}
    vids = list(counts)
    current: dict[str, Any] = {}
    for chunk in _chunks(vids, batch):
        current.update(zip(chunk, redis.hmget(PLAYID_HASH, chunk), strict=True))
        stats["round_trips"] += 1
    missing = [v for v in vids if current[v] is None]
    stats["playid_from_redis"] = len(vids) - len(missing)
    seed: dict[str, int] = {}
    if missing:
        if mongo_db is not None:
            by_uid: dict[str, list[str]] = defaultdict(list)
            for v in missing:
                by_uid[v[:4]].append(v)
            for uid, vs in by_uid.items():
                for doc in mongo_db[f"{uid}_stat"].find({"_id": {"$in": vs}}, {"PlayID": 1}):
                    if doc.get("PlayID") is not None:
                        seed[doc["_id"]] = int(doc["PlayID"])
            stats["playid_from_stat"] = len(seed)
        rest = [v for v in missing if v not in seed]
        if rest:
            own = _root_last_ids(root)
            for v in rest:
                if v in own:
                    seed[v] = own[v]
                    stats["playid_from_root"] += 1
                else:
                    seed[v] = 0
                    stats["playid_from_zero"] += 1
    before: dict[str, int] = {}
    for chunk in _chunks(vids, batch):
        p = redis.pipeline(transaction=False)
        for v in chunk:
            if v in seed:
                p.hsetnx(PLAYID_HASH, v, seed[v])
            p.hincrby(PLAYID_HASH, v, counts[v])
        res = p.execute()
        stats["round_trips"] += 1
        it = iter(res)
        for v in chunk:
            if v in seed:
                next(it)
            before[v] = int(next(it)) - counts[v]
    return before, stats


def ingest_plays(root: DataRoot, redis, mysql_hook, day: str, mongo_db=None, batch: int = 5000) -> dict:
    """Snapshot day D's plays from Redis into the data root, validate, categorise and number them.

    Re-running keeps what earlier runs archived (union), reuses their play ids and categories, and
    gives new ids only to new keys.
    """
    t0 = time.perf_counter()
    rt = _Counter()
    raw = _raw_client(redis)
    endlist = rt(redis.lrange(f"T_endlist_{day}", 0, -1))
    uniq = list(dict.fromkeys(endlist))
    duplicates = len(endlist) - len(uniq)

    if root.exists(*_d(day, "snapshot", "plays_raw.parquet")):
        prev = root.read_table(*_d(day, "snapshot", "plays_raw.parquet"))
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
    _write(root, pd.DataFrame({"key": endlist}, dtype=object), *_d(day, "snapshot", "endlist.parquet"),
           schema={"key": pa.string()})
    _write(root, pd.DataFrame({"key": keys, "S": s_raw, "J": j_raw, "z1": z_raw}, dtype=object),
           *_d(day, "snapshot", "plays_raw.parquet"),
           schema={"key": pa.string(), "S": pa.binary(), "J": pa.binary(), "z1": pa.binary()})
    tables_df = _snapshot_tables(redis, day, rt)
    _write(root, tables_df, *_d(day, "snapshot", "tables.parquet"),
           schema={"table": pa.string(), "field": pa.string(), "value": pa.string()})
    t_snap = time.perf_counter()

    plays, quarantine, segtab = core.decode_plays(keys, s_raw, j_raw, z_raw, day)
    del s_raw, j_raw, z_raw
    t_decode = time.perf_counter()

    # categories: the day's stored answers first, then cache / MySQL for new vids
    stored: dict[str, str] = {}
    sources: dict[str, str] = {}
    if root.exists(*_d(day, "kids.parquet")):
        kdf = _read(root, *_d(day, "kids.parquet"))
        stored = dict(zip(kdf["vid"].tolist(), kdf["kid"].tolist(), strict=True))
        sources = dict(zip(kdf["vid"].tolist(), kdf["source"].tolist(), strict=True))
    need = [v for v in pd.unique(plays["vid"]).tolist() if v not in stored]
    kids, from_mysql, kstats = resolve_kids(redis, mysql_hook, need, batch) if need else (
        {}, set(), {"kid_cache_hits": 0, "kid_mysql_lookups": 0, "kid_mysql_queries": 0, "round_trips": 0})
    rt.n += kstats.pop("round_trips")
    for v in kids:
        sources[v] = "mysql" if v in from_mysql else "cache"
    stored.update(kids)
    _write(root, pd.DataFrame({"vid": list(stored), "kid": [stored[v] for v in stored],
                               "source": [sources.get(v, "cache") for v in stored]}, dtype=object),
           *_d(day, "kids.parquet"), schema={"vid": pa.string(), "kid": pa.string(), "source": pa.string()})
    plays["kid"] = plays["vid"].map(stored).astype(object)
    bad_kid = core.kid_reasons(plays["vid"], stored)
    if bad_kid.any():
        bk = plays[bad_kid]
        raw_tab = root.read_table(*_d(day, "snapshot", "plays_raw.parquet")).take(pa.array(bk["pos"].to_numpy()))
        extra = pd.DataFrame({"key": bk["key"].tolist(), "reason": "bad_kid",
                              "S": raw_tab.column("S").to_pylist(), "J": raw_tab.column("J").to_pylist(),
                              "z1": raw_tab.column("z1").to_pylist()})
        quarantine = pd.concat([quarantine, extra], ignore_index=True)
        plays = plays[~bad_kid].reset_index(drop=True)

    # play ids: reuse this day's earlier allocation, reserve new ones for the rest (in T_endlist_D order)
    if root.exists(*_d(day, "allocation.parquet")):
        alloc = _read(root, *_d(day, "allocation.parquet"))
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
        before, astats = reserve_ids(redis, root, counts, mongo_db, batch)
        rt.n += astats.pop("round_trips")
        ids = core.allocate_ids(newp["vid"].astype(object).reset_index(drop=True), before)
        playid[is_new] = ids
        alloc = pd.concat([alloc, pd.DataFrame({"key": newp["key"].to_numpy(dtype=object),
                                                "vid": newp["vid"].to_numpy(dtype=object), "playid": ids})],
                          ignore_index=True)
        _write(root, alloc, *_d(day, "allocation.parquet"),
               schema={"key": pa.string(), "vid": pa.string(), "playid": pa.int64()})
    plays["playid"] = playid
    t_ids = time.perf_counter()

    segs = core.play_segments(plays, segtab)
    _write(root, segs, *_d(day, "segments.parquet"))
    out = plays.drop(columns=["jcode"])
    out = _encode_mixed(out, list(core.TEXT_DOC_FIELDS.values()))
    _write(root, out, *_d(day, "plays.parquet"), schema={"zz_uinfo": pa.string(), "Htmap": pa.string(),
                                                          "key": pa.string(), "vid": pa.string(),
                                                          "uid": pa.string(), "kid": pa.string(),
                                                          "region": pa.string(), "ipkey": pa.string()})
    _write(root, quarantine, *_d(day, "quarantine.parquet"),
           schema={"key": pa.string(), "reason": pa.string(), "S": pa.binary(), "J": pa.binary(),
                   "z1": pa.binary()})
    reasons = quarantine["reason"].value_counts().to_dict() if len(quarantine) else {}
    report = {
        "day": day, "run_id": run_id, "snapshotted": len(keys), "read_now": len(endlist),
        "new_keys": len(new_keys), "unique": len(keys), "duplicates": duplicates,
        "ingested": int(len(plays)), "quarantined": int(len(quarantine)),
        "quarantine_reasons": {str(k): int(v) for k, v in reasons.items()},
        "quarantine_path": root.uri(*_d(day, "quarantine.parquet")),
        "distinct_segment_values": len(segtab.htmap),
        "kid_cache_hits": kstats["kid_cache_hits"], "kid_mysql_lookups": kstats["kid_mysql_lookups"],
        "kid_mysql_queries": kstats["kid_mysql_queries"],
        "new_play_ids": int(is_new.sum()), **astats,
        "redis_round_trips": rt.n,
        "seconds": {"snapshot": round(t_snap - t0, 3), "decode": round(t_decode - t_snap, 3),
                    "ids": round(t_ids - t_decode, 3), "total": round(time.perf_counter() - t0, 3)},
    }
    root.write_json(report, *_d(day, "ingest.json"))
    return report


# ---- rollup -----------------------------------------------------------------------------------------

def _read_contrib(root: DataRoot, days: list[str], kinds=("vid", "vid_region", "vid_seg", "uid", "uid_region")
                  ) -> dict[str, dict[str, pd.DataFrame]]:
    return {d: {k: _read(root, *_d(d, "contrib", f"{k}.parquet")) for k in kinds} for d in days}


def _totals(per_day: dict[str, dict[str, pd.DataFrame]], days) -> dict[str, pd.DataFrame]:
    frames: dict[str, list] = defaultdict(list)
    for d in days:
        for k, df in per_day[d].items():
            frames[k].append(df)
    return core.sum_contributions(frames)


def _mtraffic(per_day: dict[str, dict[str, pd.DataFrame]]) -> tuple[dict[str, float], str | None]:
    """Month-to-date traffic per uid for the calendar month of the latest processed day."""
    if not per_day:
        return {}, None
    latest = max(per_day)
    acc: dict[str, float] = defaultdict(float)
    for d in sorted(per_day):
        if d[:6] == latest[:6]:
            u = per_day[d]["uid"]
            for uid, t in zip(u["uid"].tolist(), u["Traffic"].tolist(), strict=True):
                acc[uid] += t
    return dict(acc), latest


def stat_documents(root: DataRoot, vids=None, uids=None, days: list[str] | None = None) -> list[dict]:
    """``<uid>_stat`` documents rebuilt from the stored contributions of ``days`` (default: all days),
    restricted to ``vids`` / ``uids`` when given (``None`` = all)."""
    days = _days(root, "contrib/vid.parquet") if days is None else days
    per_day = _read_contrib(root, days)
    t = _totals(per_day, days)
    if vids is not None:
        vset = set(vids)
        t["vid"] = t["vid"][t["vid"]["vid"].isin(vset)]
        t["vid_region"] = t["vid_region"][t["vid_region"]["vid"].isin(vset)]
        t["vid_seg"] = t["vid_seg"][t["vid_seg"]["vid"].isin(vset)]
    if uids is not None:
        uset = set(uids)
        t["uid"] = t["uid"][t["uid"]["uid"].isin(uset)]
        t["uid_region"] = t["uid_region"][t["uid_region"]["uid"].isin(uset)]
    mt, _ = _mtraffic(per_day)
    out = [{"coll": f"{uid}_stat", "_id": vid, "kind": "vid", "doc": doc}
           for vid, (uid, doc) in core.vid_stat_docs(t).items()]
    out += [{"coll": f"{uid}_stat", "_id": uid, "kind": "uid", "doc": doc}
            for uid, doc in core.uid_stat_docs(t, mt).items()]
    return out


def _write_jsonl(root: DataRoot, rows: list[dict], *parts: str) -> None:
    root.write_bytes("".join(json.dumps(r) + "\n" for r in rows).encode(), *parts)


def _read_jsonl(root: DataRoot, *parts: str) -> list[dict]:
    if not root.exists(*parts):
        return []
    return [json.loads(line) for line in root.read_bytes(*parts).decode().splitlines() if line]


def rollup_videos(root: DataRoot, day: str) -> dict:
    """The day's contributions and documents, from what ``ingest_plays`` stored.

    Daily documents (``<uid>_vdaily``, ``<uid>_daily``, ``<uid>_type``, ``_id`` = D) come from the day alone;
    ``<uid>_stat`` documents are rebuilt from every stored day's contributions, so re-runs and out-of-order
    days give the same totals. ``Mtraffic`` is the uid's traffic summed over the stored days of the calendar
    month of the *latest* stored day (by date, not by run time), up to that day; it is 0.0 for a uid without
    plays that month (the legacy job only grew it and an outside job reset it monthly). When D is the latest
    day, every uid's stat document is refreshed so that a new month resets Mtraffic everywhere.
    """
    t0 = time.perf_counter()
    plays = _read(root, *_d(day, "plays.parquet"))
    segs = _read(root, *_d(day, "segments.parquet"))
    tables, bad_tables = _tables(_read(root, *_d(day, "snapshot", "tables.parquet")))
    c = core.contributions(plays, segs, tables["load"], tables["play"], tables["region"])
    for k in CONTRIB_KINDS:
        _write(root, c[k], *_d(day, "contrib", f"{k}.parquet"))

    play_docs = pd.DataFrame({"coll": plays["vid"] + "_play", "_id": plays["playid"], "Date": day})
    for f in core.PLAY_DOC_FIELDS[1:]:
        src = {"Engage": "comprate", "Provinces": "region"}.get(f, f)
        if src in plays.columns:
            play_docs[f] = plays[src]
        elif src + "__json" in plays.columns:
            play_docs[f + "__json"] = plays[src + "__json"]
    _write(root, play_docs, *_d(day, "docs", "play.parquet"),
           schema={"coll": pa.string(), "Date": pa.string(), "zz_uinfo": pa.string()})

    vd = [{"coll": f"{u}_vdaily", "_id": day, "doc": d} for u, d in core.vdaily_docs(c).items()]
    dl = [{"coll": f"{u}_daily", "_id": day, "doc": d} for u, d in core.daily_docs(c).items()]
    ty = [{"coll": f"{u}_type", "_id": day, "doc": d} for u, d in core.type_docs(c).items()]
    _write_jsonl(root, vd, *_d(day, "docs", "vdaily.jsonl"))
    _write_jsonl(root, dl, *_d(day, "docs", "daily.jsonl"))
    _write_jsonl(root, ty, *_d(day, "docs", "type.jsonl"))

    days = _days(root, "contrib/vid.parquet")
    vids = c["vid"]["vid"].tolist()
    uids = None if day == max(days) else c["uid"]["uid"].tolist()
    st = stat_documents(root, vids, uids, days)
    _write_jsonl(root, st, *_d(day, "docs", "stat.jsonl"))
    report = {"day": day, "vids": len(vids), "uids": int(len(c["uid"])), "kids": int(len(c["kid"])),
              "plays": int(len(plays)), "documents": len(play_docs) + len(vd) + len(dl) + len(ty) + len(st),
              "stat_documents": len(st), "days_included": days, "bad_table_entries": bad_tables,
              "seconds": round(time.perf_counter() - t0, 3)}
    root.write_json(report, *_d(day, "rollup.json"))
    return report


# ---- documents out ----------------------------------------------------------------------------------

def _play_docs(root: DataRoot, day: str) -> pd.DataFrame:
    return _decode_mixed(_read(root, *_d(day, "docs", "play.parquet")))


def _iter_play_docs(df: pd.DataFrame):
    """``(coll, _id, doc)`` per play, grouped by collection (stable order)."""
    fields = [f for f in core.PLAY_DOC_FIELDS if f in df.columns]
    cols = [df[f].tolist() for f in fields]
    zi = fields.index("zz_uinfo") if "zz_uinfo" in fields else -1
    for coll, _id, *vals in zip(df["coll"].tolist(), df["_id"].tolist(), *cols, strict=True):
        doc = dict(zip(fields, vals, strict=True))
        if zi >= 0 and not isinstance(vals[zi], str):  # absent K_z1 (None / NaN after Parquet)
            del doc["zz_uinfo"]
        yield coll, int(_id), doc


def _set_spec(kind: str, doc: dict) -> dict:
    """The ``$set`` of an owned document: whole sub-documents per vid / kid, whole Geo maps."""
    return dict(doc)


def _stat_ids(root: DataRoot, day: str) -> tuple[list[str], list[str]]:
    """The vids and uids whose stat documents day D's rollup refreshed."""
    stored = _read_jsonl(root, *_d(day, "docs", "stat.jsonl"))
    return ([r["_id"] for r in stored if r["kind"] == "vid"], [r["_id"] for r in stored if r["kind"] == "uid"])


def publish(root: DataRoot, day: str, mongo_db) -> dict:
    """Bulk, unordered, acknowledged upserts of the day's documents (``$set`` of the owned fields only).

    Play documents and the day's vdaily/daily/type documents come from ``plays/D/docs``; stat documents
    of the vids and uids the day touched are rebuilt from all stored days at publish time.
    """
    from pymongo import UpdateOne
    from pymongo.write_concern import WriteConcern

    calls = 0
    upserts = 0
    colls: set[str] = set()

    def flush(coll: str, ops: list) -> None:
        nonlocal calls, upserts
        if not ops:
            return
        c = mongo_db.get_collection(coll, write_concern=WriteConcern(w=1))
        for chunk in _chunks(ops, BULK_BATCH):
            c.bulk_write(chunk, ordered=False)
            calls += 1
        upserts += len(ops)
        colls.add(coll)

    df = _play_docs(root, day).sort_values(["coll", "_id"], kind="stable")
    cur, ops = None, []
    for coll, _id, doc in _iter_play_docs(df):
        if coll != cur:
            flush(cur, ops)
            cur, ops = coll, []
        ops.append(UpdateOne({"_id": _id}, {"$set": doc}, upsert=True))
    flush(cur, ops)
    del df

    by_coll: dict[str, list] = defaultdict(list)
    for kind in ("vdaily", "daily", "type"):
        for r in _read_jsonl(root, *_d(day, "docs", f"{kind}.jsonl")):
            by_coll[r["coll"]].append(UpdateOne({"_id": r["_id"]}, {"$set": _set_spec(kind, r["doc"])}, upsert=True))
    vids, uids = _stat_ids(root, day)
    for r in stat_documents(root, vids, uids):
        by_coll[r["coll"]].append(UpdateOne({"_id": r["_id"]}, {"$set": r["doc"]}, upsert=True))
    for coll in sorted(by_coll):
        flush(coll, by_coll[coll])
    return {"day": day, "collections": len(colls), "upserts": upserts, "bulk_calls": calls}


def all_documents(root: DataRoot) -> dict[str, dict[Any, dict]]:
    """Every document that would be published, ``{collection: {_id: doc}}`` (stat docs at their latest)."""
    out: dict[str, dict[Any, dict]] = defaultdict(dict)
    for day in _days(root, "rollup.json"):
        for coll, _id, doc in _iter_play_docs(_play_docs(root, day)):
            out[coll][_id] = doc
        for kind in ("vdaily", "daily", "type"):
            for r in _read_jsonl(root, *_d(day, "docs", f"{kind}.jsonl")):
                out[r["coll"]][r["_id"]] = r["doc"]
    for r in stat_documents(root):
        out[r["coll"]][r["_id"]] = r["doc"]
    return out


def export_docs(root: DataRoot, out_dir: str) -> dict:
    """Write ``<collection>.jsonl`` per collection under ``out_dir`` (documents with ``_id`` first)."""
    import fsspec

    fs, base = fsspec.core.url_to_fs(out_dir)
    fs.makedirs(base, exist_ok=True)
    docs = all_documents(root)
    n = 0
    for coll in sorted(docs):
        items = sorted(docs[coll].items(), key=lambda kv: (str(type(kv[0])), kv[0]))
        with fs.open(f"{base.rstrip('/')}/{coll}.jsonl", "w") as fh:
            for _id, doc in items:
                fh.write(json.dumps({"_id": _id, **doc}) + "\n")
        n += len(items)
    return {"out": out_dir, "collections": len(docs), "documents": n}


# ---- cleanup & verify -------------------------------------------------------------------------------

def cleanup(root: DataRoot, redis, day: str) -> dict:
    """Remove the archived keys from ``T_endlist_D`` (one LREM ... 1 per archived occurrence, in list order,
    so each removal finds its key at the head; later arrivals stay) and raise ``vid_playid`` to at least
    the last id given out. A repeated cleanup of the same ingest run removes nothing."""
    report = root.read_json(*_d(day, "ingest.json"))
    done = root.read_json(*_d(day, "cleanup.json")) if root.exists(*_d(day, "cleanup.json")) else {}
    removed = 0
    round_trips = 0
    if done.get("run_id") != report["run_id"]:
        keys = root.read_table(*_d(day, "snapshot", "endlist.parquet")).column("key").to_pylist()
        name = f"T_endlist_{day}"
        for chunk in _chunks(keys, 5000):
            p = redis.pipeline(transaction=False)
            for k in chunk:
                p.lrem(name, 1, k)
            removed += sum(p.execute())
            round_trips += 1
    raised = 0
    if root.exists(*_d(day, "allocation.parquet")):
        alloc = _read(root, *_d(day, "allocation.parquet"))
        last = alloc.groupby("vid")["playid"].max()
        script = redis.register_script(_RAISE_LUA)
        items = [(str(v), int(i)) for v, i in last.items()]
        for chunk in _chunks(items, 2000):
            raised += int(script(keys=[PLAYID_HASH], args=[x for pair in chunk for x in pair]))
            round_trips += 1
    out = {"day": day, "run_id": report["run_id"], "removed": removed, "playid_raised": raised,
           "redis_round_trips": round_trips, "remaining": redis.llen(f"T_endlist_{day}")}
    root.write_json(out, *_d(day, "cleanup.json"))
    return out


def _check(name: str, ok: bool, detail) -> dict:
    return {"name": name, "ok": bool(ok), "detail": detail}


def _rel_ok(a: float, b: float, rel: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


def verify_plays(root: DataRoot, day: str, mongo_db=None, max_quarantine_rate: float = 0.01) -> list[dict]:
    """Checks recomputed from the data root (and MongoDB when given); each ``{"name", "ok", "detail"}``."""
    checks = []
    rep = root.read_json(*_d(day, "ingest.json"))
    unique = root.read_table(*_d(day, "snapshot", "plays_raw.parquet"), columns=["key"]).num_rows
    plays = _read(root, *_d(day, "plays.parquet"), columns=["key", "vid", "playid", "flow"])
    quarantine = _read(root, *_d(day, "quarantine.parquet"), columns=["key", "reason"])
    ing, qua = len(plays), len(quarantine)
    checks.append(_check("plays_accounted", unique == ing + qua and plays["key"].is_unique,
                         {"unique": unique, "ingested": ing, "quarantined": qua,
                          "duplicates": rep.get("duplicates", 0)}))
    ids_ok = not plays.duplicated(["vid", "playid"]).any() and bool((plays["playid"] > 0).all())
    checks.append(_check("play_ids_unique", ids_ok, {"plays": ing}))

    cv = _read(root, *_d(day, "contrib", "vid.parquet"))
    vd = _read_jsonl(root, *_d(day, "docs", "vdaily.jsonl"))
    clicks_docs = sum(g["ClickNum"] for r in vd for v in r["doc"].values() for g in v["Geo"].values())
    checks.append(_check("clicknum_equals_plays", int(cv["ClickNum"].sum()) == ing == clicks_docs,
                         {"contrib": int(cv["ClickNum"].sum()), "vdaily_docs": clicks_docs, "ingested": ing}))
    flow = float(plays["flow"].sum())
    tr_docs = sum(v["Traffic"] for r in vd for v in r["doc"].values())
    checks.append(_check("traffic_equals_flow",
                         _rel_ok(float(cv["Traffic"].sum()), flow) and _rel_ok(tr_docs, flow),
                         {"flow": flow, "contrib": float(cv["Traffic"].sum()), "vdaily_docs": tr_docs}))

    # running totals: stored stat docs == Σ stored days; (Σ all) - (Σ without D) == D's contribution
    rollup = root.read_json(*_d(day, "rollup.json"))
    days = [d for d in rollup["days_included"] if root.exists(*_d(d, "contrib", "vid.parquet"))]
    per_day = _read_contrib(root, days)
    with_d = _totals(per_day, days)["vid"].set_index("vid")
    without = _totals(per_day, [d for d in days if d != day])["vid"].set_index("vid")
    cols = ["Traffic", "EngageSum", "Load", "Play", "IP"]
    delta = with_d[cols].subtract(without[cols].reindex(with_d.index).fillna(0))
    mine = cv.set_index("vid")[cols].reindex(delta.index).fillna(0)
    moved = bool(np.allclose(delta.to_numpy(dtype=float), mine.to_numpy(dtype=float), rtol=1e-9, atol=1e-6))
    stored = {(r["coll"], r["_id"], r["kind"]): r["doc"] for r in _read_jsonl(root, *_d(day, "docs", "stat.jsonl"))}
    fresh = {(r["coll"], r["_id"], r["kind"]): r["doc"] for r in stat_documents(root, *_stat_ids(root, day), days)}
    bad = [f"{k}: {core.diff(stored[k], fresh.get(k))}" for k in stored if not core.close(stored[k], fresh.get(k))]
    checks.append(_check("running_totals_moved_by_day", moved and not bad and set(stored) == set(fresh),
                         {"days": days, "vids": int(len(cv)), "mismatches": bad[:5]}))

    rate = qua / unique if unique else 0.0
    checks.append(_check("quarantine_rate", rate <= max_quarantine_rate,
                         {"rate": rate, "threshold": max_quarantine_rate, "quarantined": qua,
                          "reasons": quarantine["reason"].value_counts().to_dict(),
                          "path": root.uri(*_d(day, "quarantine.parquet"))}))

    if mongo_db is not None:
        checks.append(_verify_published(root, day, mongo_db))
    return checks


def _verify_published(root: DataRoot, day: str, mongo_db) -> dict:
    """Published documents of the day equal the data root's (owned fields, floats 1e-9 relative)."""
    expected: dict[str, dict] = defaultdict(dict)
    for coll, _id, doc in _iter_play_docs(_play_docs(root, day)):
        expected[coll][_id] = doc
    for kind in ("vdaily", "daily", "type"):
        for r in _read_jsonl(root, *_d(day, "docs", f"{kind}.jsonl")):
            expected[r["coll"]][r["_id"]] = r["doc"]
    for r in stat_documents(root, *_stat_ids(root, day)):
        expected[r["coll"]][r["_id"]] = r["doc"]
    bad: list[str] = []
    n = 0
    for coll, docs in expected.items():
        got = {d["_id"]: d for d in mongo_db[coll].find({"_id": {"$in": list(docs)}})}
        for _id, doc in docs.items():
            n += 1
            have = got.get(_id)
            sub = {k: have.get(k) for k in doc} if have else None
            if sub is None or not core.close(doc, sub):
                bad.append(f"{coll}/{_id}: {core.diff(doc, sub) if sub else 'missing'}")
    return _check("published_documents_match", not bad, {"documents": n, "mismatches": bad[:5]})


# ---- CLI --------------------------------------------------------------------------------------------

def run_plays_cli(args) -> int:
    """``video-analytics plays``: ingest + rollup (+ publish when ``video_mongo`` is defined) + verify."""
    from include import config

    root = DataRoot(args.data_root)
    mongo = config.mongo_db()
    out: dict[str, Any] = {"ingest": ingest_plays(root, config.redis_client(), config.mysql_hook(), args.date,
                                                  mongo_db=mongo)}
    out["rollup"] = rollup_videos(root, args.date)
    if mongo is not None:
        out["publish"] = publish(root, args.date, mongo)
    out["verify"] = verify_plays(root, args.date, mongo)
    print(json.dumps(out, indent=2, default=str))
    return 0 if all(c["ok"] for c in out["verify"]) else 1


def run_export_cli(args) -> int:
    """``video-analytics export-docs``."""
    print(json.dumps(export_docs(DataRoot(args.data_root), args.out)))
    return 0


__all__ = ["ingest_plays", "rollup_videos", "publish", "export_docs", "cleanup", "verify_plays",
           "run_plays_cli", "run_export_cli", "resolve_kids", "reserve_ids", "stat_documents",
           "all_documents"]
