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


def _realistic(rng, vid_of, n_vids, region_of, city_of, br_of, seen: set):
    """The realistic model's draws: regions (a fifth as province codes), cities, browsers and an iterator of
    ``K_J`` texts (their hashes collected in ``seen``)."""
    region_of = vm.region_labels(rng, region_of, len(REGIONS))
    city_of = np.where(rng.random(len(city_of)) < 0.5, city_of, len(CITIES) + rng.integers(0, len(vm.CITIES_CN),
                                                                                          len(city_of)))
    br_of = np.where(rng.random(len(br_of)) < 0.8, br_of, len(BROWSERS) + rng.integers(0, len(vm.BROWSERS_CN),
                                                                                     len(br_of)))
    return region_of, city_of, br_of, vm.realistic_kj(rng, vm.video_lengths(rng, n_vids)[vid_of], seen)


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


def generate_plays(redis, mysql_hook_or_conn, day: str, plays: int = 5000, vids: int | None = None, seed=7,
                   bad_rate: float = 0.002, dup_rate: float = 0.001, z1_rate: float = 0.3,
                   key_prefix: str = "", model: str = "realistic") -> dict:
    """Write ``plays`` finished plays of ``day`` (YYYYMMDD) to Redis, and the category tables to MySQL.

    Popularity is Zipf-like over ``vids`` videos (default ``max(20, plays // 200)``, 5,000 for 1M plays; pooled:
    ``plays // 500``),
    owned by ``vids // 10`` uids. About ``bad_rate`` of the plays are malformed (one of several kinds) and
    ``dup_rate`` of the keys are pushed twice. ``mysql_hook_or_conn`` may be None (no MySQL tables).
    ``model="realistic"``: every play's ``K_J`` from the viewing model (``include.viewing_model``), 5,000
    vids per 1M plays, some regions sent as ints, non-ASCII cities and browsers, flow as int bytes;
    ``model="pooled"`` (the best case: few distinct ``K_J``) writes what it always wrote.
    """
    if model not in ("realistic", "pooled"):
        raise ValueError(f"unknown sample model {model!r} (realistic or pooled)")
    real = model == "realistic"
    t0 = time.perf_counter()
    n_vids = vids or max(20, plays // (200 if real else 500))
    vid_list, uids = catalogue(n_vids, seed)
    rng = np.random.default_rng([int(seed), zlib.crc32(day.encode())])
    weights = 1.0 / np.arange(1, n_vids + 1) ** 1.1
    order = rng.permutation(n_vids)
    p = weights[order] / weights.sum()
    vid_of = rng.choice(n_vids, size=plays, p=p)
    region_p = 1.0 / np.arange(1, len(REGIONS) + 1)
    region_p /= region_p.sum()
    region_of = rng.choice(len(REGIONS), size=plays, p=region_p)
    conv.parse_ymd(day)  # validates the day
    secs = np.sort(rng.integers(0, 86400, plays))
    ip_pool = max(10, plays // 3)
    ip_of = rng.integers(0, ip_pool, plays)
    flow = np.round(rng.gamma(2.0, 1500.0, plays), 2)
    comp = np.round(rng.random(plays), 4)
    pool = _segment_pool(rng, max(50, min(plays, 20000) // 4))
    j_of = rng.integers(0, len(pool), plays)
    os_of = rng.integers(0, len(OSES), plays)
    br_of = rng.integers(0, len(BROWSERS), plays)
    city_of = rng.integers(0, len(CITIES), plays)
    has_z1 = rng.random(plays) < z1_rate
    bad_of = np.flatnonzero(rng.random(plays) < bad_rate)
    bad_kind = {int(i): BAD_KINDS[k % len(BAD_KINDS)] for k, i in enumerate(bad_of.tolist())}
    regions, cities, browsers, j_texts, seen = REGIONS, CITIES, BROWSERS, None, set()
    if real:
        region_of, city_of, br_of, j_texts = _realistic(np.random.default_rng([int(seed), zlib.crc32(day.encode()), 1]),
                                                        vid_of, n_vids, region_of, city_of, br_of, seen)
        regions, cities, browsers = REGIONS + vm.REGION_CODES, CITIES + vm.CITIES_CN, BROWSERS + vm.BROWSERS_CN

    keys: list[str] = []
    dumps = ujson.dumps
    pipe = redis.pipeline(transaction=False)
    batch: dict[str, str] = {}
    day_dash = f"{day[:4]}-{day[4:6]}-{day[6:]}"
    per_vid = np.zeros(n_vids, dtype=np.int64)
    per_vid_region: dict[tuple[int, int], int] = {}
    for i in range(plays):
        v = int(vid_of[i])
        key = f"{key_prefix}{vid_list[v]}_{day}{i:07d}"
        kind = bad_kind.get(i)
        sec = int(secs[i])
        s = {"starttime": f"{day_dash} {sec // 3600:02d}:{sec % 3600 // 60:02d}:{sec % 60:02d}",
             "country": "CN", "region": regions[region_of[i]], "city": cities[city_of[i]],
             "ip": f"10.{ip_of[i] >> 16 & 255}.{ip_of[i] >> 8 & 255}.{ip_of[i] & 255}",
             "os": OSES[os_of[i]], "browser": browsers[br_of[i]], "flow": int(flow[i]) if real else float(flow[i]),
             "comprate": float(comp[i])}
        s_text = None
        j_text = pool[j_of[i]] if j_texts is None else next(j_texts)
        if kind is None:
            per_vid[v] += 1
            r = int(region_of[i])
            per_vid_region[(v, r)] = per_vid_region.get((v, r), 0) + 1
        elif kind == "missing_J":
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
        elif kind == "bad_vid":
            key = f"{key_prefix}1.{vid_list[v][2:]}_{day}{i:07d}"
        if kind != "missing_S":
            batch[key + "_S"] = s_text if s_text is not None else dumps(s)
        if j_text is not None:
            batch[key + "_J"] = j_text
        if has_z1[i]:
            batch[key + "_z1"] = f"name=用户{i % 97}/agent=Mozilla/5.0 (x{i % 13})"
        keys.append(key)
        if len(batch) >= 20000:
            pipe.mset(batch)
            pipe.execute()
            batch = {}
    if batch:
        pipe.mset(batch)
    pipe.execute()

    dups = [keys[int(i)] for i in rng.choice(len(keys), size=int(plays * dup_rate), replace=False)] if plays else []
    listed = keys + dups
    for i in range(0, len(listed), 20000):
        pipe.rpush(conv.endlist_key(day), *listed[i: i + 20000])
    # loads >= plays started >= finished plays; a few vids (1 in 100) have no table entries (taken as 0)
    load, playt, regt = {}, {}, {}
    extra = rng.integers(0, 5, n_vids)
    for v in range(n_vids):
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
    cats = write_categories(mysql_hook_or_conn, vid_list, seed) if mysql_hook_or_conn is not None else {}
    return {"day": day, "plays": plays, "keys_pushed": len(listed), "duplicates": len(dups),
            "bad": len(bad_kind), "vids": n_vids, "uids": len(uids), "model": model,
            "segment_patterns": len(pool) if j_texts is None else len(seen),
            **cats, "seconds": round(time.perf_counter() - t0, 3)}
