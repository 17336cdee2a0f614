"""Realistic sample plays for a day, written where the front-end collector writes them (CONTRACT §2).

Redis: ``T_endlist_D``, ``K_S`` / ``K_J`` / ``K_z1``, ``T_loadtable_D``, ``T_playtable_D``,
``T_regiontable_D``. MySQL: ``vinfo(vid, vsortid)`` and ``vsort(id, kid)``.
"""

from __future__ import annotations

import time
import zlib

import numpy as np
import ujson

from include import viewing_model as vm
from video_analytics import conventions as conv

REGIONS = ["Beijing", "Shanghai", "Guangdong", "Zhejiang", "Jiangsu", "Sichuan", "Hubei", "Hunan", "Fujian",
           "Shandong", "Henan", "Hebei", "Liaoning", "Shaanxi", "Chongqing", "Tianjin", "Yunnan", "Guangxi",
           "Anhui", "Jiangxi", "Jilin", "Heilongjiang", "Shanxi", "Guizhou", "Gansu", "Hainan", "Xinjiang",
           "Neimenggu", "Ningxia", "Qinghai", "Xizang", "广东"]
CITIES = ["Shenzhen", "Guangzhou", "Hangzhou", "Nanjing", "Chengdu", "Wuhan", "Changsha", "Xiamen", "Jinan",
          "Zhengzhou", "深圳"]
OSES = ["Windows 7", "Windows XP", "Mac OS X", "Linux", "iOS", "Android"]
BROWSERS = ["Chrome", "IE 8", "IE 9", "Firefox", "Safari", "Opera", "360SE"]
KIDS = ["1", "2", "3", "5", "8", "13", "21", "news", "music"]  # vsort ids 1..9; id 10 has a NULL kid
BAD_KINDS = ["missing_S", "missing_J", "invalid_json_S", "invalid_json_J", "missing_field:ip",
             "non_numeric:flow", "bad_region", "bad_vid", "bad_region$", "non_numeric:comprate"]


def catalogue(vids: int, seed: int = 7) -> tuple[list[str], list[str]]:
    """The vids (7 characters, uid = first 4) and uids of a sample site; stable for a seed."""
    n_uids = max(3, vids // 10)
    rng = np.random.default_rng(seed)
    owner = np.sort(rng.integers(0, n_uids, vids))
    uids = [f"{1000 + u}" for u in range(n_uids)]
    counters: dict[int, int] = {}
    out = []
    for o in owner.tolist():
        counters[o] = counters.get(o, 0) + 1
        out.append(f"{1000 + o}{counters[o]:03d}")
    return out, uids


def _segment_pool(rng, size: int) -> list[str]:
    """Distinct ``K_J`` texts: mostly from the start, 2-s segments numbered from 1, some rewatches."""
    pool = []
    for _ in range(size):
        start = 1 if rng.random() < 0.8 else int(rng.integers(1, 60))
        length = int(min(rng.geometric(1 / 12), 150))
        counts = np.ones(length, dtype=int)
        if rng.random() < 0.25 and length > 2:
            a = int(rng.integers(0, length - 1))
            counts[a: a + int(rng.integers(1, 6))] += int(rng.integers(1, 3))
        pool.append("[" + ",".join(f"[{start + i},{c}]" for i, c in enumerate(counts.tolist())) + "]")
    return pool


def _realistic(rng, d: dict, n_vids: int) -> dict:
    """The realistic model's draws over ``d``: a fifth of the regions as province codes (ints), non-ASCII
    cities and browsers, flow as int bytes, and an iterator of ``K_J`` texts (their hashes in ``seen``)."""
    n = len(d["vid"])
    d["region"] = vm.region_labels(rng, d["region"], len(REGIONS))
    d["city"] = np.where(rng.random(n) < 0.5, d["city"], len(CITIES) + rng.integers(0, len(vm.CITIES_CN), n))
    d["browser"] = np.where(rng.random(n) < 0.8, d["browser"], len(BROWSERS) + rng.integers(0, len(vm.BROWSERS_CN), n))
    d.update(regions=REGIONS + vm.REGION_CODES, cities=CITIES + vm.CITIES_CN, browsers=BROWSERS + vm.BROWSERS_CN,
             int_flow=True, seen=set())
    d["texts"] = vm.realistic_kj(rng, vm.video_lengths(rng, n_vids)[d["vid"]], d["seen"])
    return d


def _mysql_conn(obj):
    return obj.get_conn() if hasattr(obj, "get_conn") else obj


def write_categories(mysql_hook_or_conn, vids: list[str], seed: int = 7) -> dict:
    """``vsort`` (ids 1..10, id 10 with a NULL kid) and ``vinfo`` for ~92% of ``vids`` (the rest have no row)."""
    conn = _mysql_conn(mysql_hook_or_conn)
    rng = np.random.default_rng(seed + 1)
    cur = conn.cursor()
    cur.execute("CREATE TABLE IF NOT EXISTS vsort (id INT PRIMARY KEY, kid VARCHAR(64) NULL)")
    cur.execute("CREATE TABLE IF NOT EXISTS vinfo (vid VARCHAR(64) PRIMARY KEY, vsortid INT)")
    cur.executemany("REPLACE INTO vsort (id, kid) VALUES (%s, %s)",
                    [(i + 1, k) for i, k in enumerate(KIDS)] + [(len(KIDS) + 1, None)])
    rows = [(v, int(rng.integers(1, len(KIDS) + 2))) for v in vids if rng.random() < 0.92]
    for i in range(0, len(rows), 5000):
        cur.executemany("REPLACE INTO vinfo (vid, vsortid) VALUES (%s, %s)", rows[i: i + 5000])
    conn.commit()
    cur.close()
    return {"vinfo_rows": len(rows), "vids_without_row": len(vids) - len(rows)}


def _draws(rng, n_vids: int, plays: int, bad_rate: float, z1_rate: float) -> dict:
    """Every random choice of the plays, in one fixed order (the output depends on it)."""
    weights = 1.0 / np.arange(1, n_vids + 1) ** 1.1
    order = rng.permutation(n_vids)
    p = weights[order] / weights.sum()
    d = {"vid": rng.choice(n_vids, size=plays, p=p)}
    region_p = 1.0 / np.arange(1, len(REGIONS) + 1)
    region_p /= region_p.sum()
    d["region"] = rng.choice(len(REGIONS), size=plays, p=region_p)
    d["secs"] = np.sort(rng.integers(0, 86400, plays))
    d["ip"] = rng.integers(0, max(10, plays // 3), plays)
    d["flow"] = np.round(rng.gamma(2.0, 1500.0, plays), 2)
    d["comp"] = np.round(rng.random(plays), 4)
    d["pool"] = _segment_pool(rng, max(50, min(plays, 20000) // 4))
    d["j"] = rng.integers(0, len(d["pool"]), plays)
    d["os"] = rng.integers(0, len(OSES), plays)
    d["browser"] = rng.integers(0, len(BROWSERS), plays)
    d["city"] = rng.integers(0, len(CITIES), plays)
    d["z1"] = rng.random(plays) < z1_rate
    bad_of = np.flatnonzero(rng.random(plays) < bad_rate)
    d["bad"] = {int(i): BAD_KINDS[k % len(BAD_KINDS)] for k, i in enumerate(bad_of.tolist())}
    d.update(regions=REGIONS, cities=CITIES, browsers=BROWSERS, int_flow=False)
    return d


def _spoil(kind: str, i: int, s: dict, j_text: str | None) -> tuple[str | None, str | None, bool]:
    """A malformed play of ``kind``: ``(K_S text, or None for ``s`` as JSON; K_J text; a bad vid)``."""
    s_text = None
    if kind == "missing_J":
        j_text = None
    elif kind == "invalid_json_S":
        s_text = '{"starttime": "' + s["starttime"]
    elif kind == "invalid_json_J":
        j_text = "[[1,1],[2,"
    elif kind == "missing_field:ip":
        del s["ip"]
    elif kind == "non_numeric:flow":
        s["flow"] = "n/a"
    elif kind == "non_numeric:comprate":
        s["comprate"] = None if i % 2 else "x"
    elif kind == "bad_region":
        s["region"] = "He.bei"
    elif kind == "bad_region$":
        s["region"] = "$where"
    return s_text, j_text, kind == "bad_vid"


def _play_s(d: dict, i: int, day_dash: str) -> dict:
    """The ``K_S`` fields of play ``i``."""
    sec, ip = int(d["secs"][i]), d["ip"][i]
    return {"starttime": f"{day_dash} {sec // 3600:02d}:{sec % 3600 // 60:02d}:{sec % 60:02d}",
            "country": "CN", "region": d["regions"][d["region"][i]], "city": d["cities"][d["city"][i]],
            "ip": f"10.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}", "os": OSES[d["os"][i]],
            "browser": d["browsers"][d["browser"][i]],
            "flow": int(d["flow"][i]) if d["int_flow"] else float(d["flow"][i]),
            "comprate": float(d["comp"][i])}


def _write_plays(pipe, d: dict, vid_list: list[str], day: str, key_prefix: str):
    """``K_S`` / ``K_J`` / ``K_z1`` of every play; ``(keys, good plays per vid, per (vid, region))``."""
    keys: list[str] = []
    dumps = ujson.dumps
    batch: dict[str, str] = {}
    day_dash = f"{day[:4]}-{day[4:6]}-{day[6:]}"
    per_vid = np.zeros(len(vid_list), dtype=np.int64)
    per_vid_region: dict[tuple[int, int], int] = {}
    for i in range(len(d["vid"])):
        v = int(d["vid"][i])
        key = f"{key_prefix}{vid_list[v]}_{day}{i:07d}"
        kind = d["bad"].get(i)
        s = _play_s(d, i, day_dash)
        s_text, j_text = None, next(d["texts"]) if "texts" in d else d["pool"][d["j"][i]]
        if kind is None:
            per_vid[v] += 1
            r = int(d["region"][i])
            per_vid_region[(v, r)] = per_vid_region.get((v, r), 0) + 1
        else:
            s_text, j_text, bad_vid = _spoil(kind, i, s, j_text)
            if bad_vid:
                key = f"{key_prefix}1.{vid_list[v][2:]}_{day}{i:07d}"
        if kind != "missing_S":
            batch[key + "_S"] = s_text if s_text is not None else dumps(s)
        if j_text is not None:
            batch[key + "_J"] = j_text
        if d["z1"][i]:
            batch[key + "_z1"] = f"name=用户{i % 97}/agent=Mozilla/5.0 (x{i % 13})"
        keys.append(key)
        if len(batch) >= 20000:
            pipe.mset(batch)
            pipe.execute()  # bounded memory: a realistic day's K_J texts are large
            batch = {}
    if batch:
        pipe.mset(batch)
    pipe.execute()
    return keys, per_vid, per_vid_region


def _write_tables(pipe, rng, day: str, vid_list: list[str], per_vid, per_vid_region, regions=REGIONS) -> None:
    """``T_loadtable_D``, ``T_playtable_D``, ``T_regiontable_D``: loads >= plays started >= finished
    plays; a few vids (1 in 100) have no table entries (taken as 0)."""
    load, playt, regt = {}, {}, {}
    extra = rng.integers(0, 5, len(vid_list))
    for v in range(len(vid_list)):
        if per_vid[v] == 0 or v % 100 == 99:
            continue
        playt[vid_list[v]] = int(per_vid[v] + extra[v])
        load[vid_list[v]] = int(per_vid[v] + extra[v] + rng.integers(0, 20))
    for (v, r), c in per_vid_region.items():
        if v % 100 != 99:
            regt[vid_list[v] + str(regions[r])] = int(c + rng.integers(0, 3))
    for name, table in ((conv.table_key("load", day), load), (conv.table_key("play", day), playt),
                        (conv.table_key("region", day), regt)):
        if table:
            pipe.hset(name, mapping=table)
    pipe.execute()


def generate_plays(redis, mysql_hook_or_conn, day: str, plays: int = 5000, vids: int | None = None, seed=7,
                   bad_rate: float = 0.002, dup_rate: float = 0.001, z1_rate: float = 0.3,
                   key_prefix: str = "", model: str = "realistic") -> dict:
    """Write ``plays`` finished plays of ``day`` (YYYYMMDD) to Redis, and the category tables to MySQL.

    Popularity is Zipf-like over ``vids`` videos (default ``max(20, plays // 200)``, 5,000 for 1M plays;
    pooled: ``plays // 500``), owned by ``vids // 10`` uids. About ``bad_rate`` of the plays are malformed (one
    of several kinds) and ``dup_rate`` of the keys are pushed twice. ``mysql_hook_or_conn`` may be None (no
    MySQL tables). ``model="realistic"``: every play's ``K_J`` from the viewing model (``include.viewing_model``),
    some regions sent as ints, non-ASCII cities and browsers, flow as int bytes; ``model="pooled"`` (the best
    case: few distinct ``K_J``) writes what it always wrote.
    """
    if model not in ("realistic", "pooled"):
        raise ValueError(f"unknown sample model {model!r} (realistic or pooled)")
    t0 = time.perf_counter()
    conv.parse_ymd(day)  # validates the day
    n_vids = vids or max(20, plays // (200 if model == "realistic" else 500))
    vid_list, uids = catalogue(n_vids, seed)
    rng = np.random.default_rng([int(seed), zlib.crc32(day.encode())])
    d = _draws(rng, n_vids, plays, bad_rate, z1_rate)
    if model == "realistic":
        _realistic(np.random.default_rng([int(seed), zlib.crc32(day.encode()), 1]), d, n_vids)
    pipe = redis.pipeline(transaction=False)
    keys, per_vid, per_vid_region = _write_plays(pipe, d, vid_list, day, key_prefix)

    dups = [keys[int(i)] for i in rng.choice(len(keys), size=int(plays * dup_rate), replace=False)] if plays else []
    listed = keys + dups
    for i in range(0, len(listed), 20000):
        pipe.rpush(conv.endlist_key(day), *listed[i: i + 20000])
    _write_tables(pipe, rng, day, vid_list, per_vid, per_vid_region, d["regions"])
    cats = write_categories(mysql_hook_or_conn, vid_list, seed) if mysql_hook_or_conn is not None else {}
    return {"day": day, "plays": plays, "keys_pushed": len(listed), "duplicates": len(dups),
            "bad": len(d["bad"]), "vids": n_vids, "uids": len(uids),
            "segment_patterns": len(d["seen"]) if "seen" in d else len(d["pool"]),
            **({"model": model} if model != "pooled" else {}), **cats, "seconds": round(time.perf_counter() - t0, 3)}
