"""Benchmark: does a day's plays run cost the same on day 60 as on day 1? (issues "plays at production
scale" item 1 and "verify: cost per day independent of history")

Runs DAYS consecutive days (default 60, from 2014-01-01, so the run crosses two month ends) of PLAYS plays
a day over VIDS videos (``include/sample_plays.py``, seed = the day) through ingest, rollup, publish (to a
counting stand-in for MongoDB: it counts ``bulk_write`` calls and operations and stores nothing; mongomock
would take minutes a day) and verify, on one growing data root, in one process. Prints one JSON line a day
and a summary comparing the first and last days (medians of the first / last ``--edge`` days).

    . scripts/env.sh && .venv/bin/python bench/bench_plays_history.py --days 60 --plays 20000 --vids 5000

Redis database ``--redis-db`` (default 8) is flushed at the start and the end; MySQL ``test_bench_history``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class _Result:
    def __init__(self, n: int) -> None:
        self.upserted_count, self.matched_count = n, 0


class CountingCollection:
    """Enough of a pymongo collection for ``publish``: counts, keeps nothing but the publish marker."""

    calls = 0
    ops = 0

    def __init__(self, store: dict) -> None:
        self.store = store

    def bulk_write(self, ops, ordered=True):
        CountingCollection.calls += 1
        CountingCollection.ops += len(ops)
        return _Result(len(ops))

    def find_one(self, flt):
        return self.store.get(flt["_id"])

    def update_one(self, flt, update, upsert=False):
        self.store.setdefault(flt["_id"], {"_id": flt["_id"], **update.get("$setOnInsert", {})})


class CountingDB:
    def __init__(self) -> None:
        self.markers: dict = {}

    def get_collection(self, name, write_concern=None):
        return CountingCollection(self.markers.setdefault(name, {}))

    __getitem__ = get_collection


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--plays", type=int, default=20_000)
    p.add_argument("--vids", type=int, default=5_000)
    p.add_argument("--start", default="2014-01-01")
    p.add_argument("--edge", type=int, default=5, help="days at each end for the medians")
    p.add_argument("--redis-db", type=int, default=8)
    p.add_argument("--mysql-db", default="test_bench_history")
    p.add_argument("--keep", help="keep the data root in this folder")
    a = p.parse_args(argv)

    import redis
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    from bench.bench_plays import _mysql
    from include.plays.ingest_plays import ingest_plays
    from include.plays.publish import publish
    from include.plays.rollup_videos import rollup_videos
    from include.plays.verify import verify_history, verify_plays
    from include.sample_plays import generate_plays
    from include.storage import DataRoot
    from video_analytics.conventions import ymd

    r = redis.Redis(host="127.0.0.1", port=6379, db=a.redis_db, decode_responses=True)
    r.flushdb()
    conn = _mysql(a.mysql_db)
    hook = MySqlHook(mysql_conn_id="video_mysql", schema=a.mysql_db)
    folder = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="bench_history_"))
    root = DataRoot(str(folder))
    db = CountingDB()
    rows = []
    try:
        # warm-up (imports, connections, first queries) on a throwaway root, so day 1 is not charged for it
        warm = Path(tempfile.mkdtemp(prefix="bench_history_warm_"))
        generate_plays(r, conn, "20131201", plays=a.plays, vids=a.vids, seed=0)
        wroot = DataRoot(str(warm))
        ingest_plays(wroot, r, hook, "20131201")
        rollup_videos(wroot, "20131201", r)
        publish(wroot, "20131201", CountingDB(), r)
        verify_plays(wroot, "20131201", redis=r)
        shutil.rmtree(warm, ignore_errors=True)
        r.flushdb()
        for i in range(a.days):
            day = ymd(dt.date.fromisoformat(a.start) + dt.timedelta(days=i))
            generate_plays(r, conn, day, plays=a.plays, vids=a.vids, seed=7)  # one catalogue; the day varies the plays
            calls0, ops0 = CountingCollection.calls, CountingCollection.ops
            t0 = time.perf_counter()
            ingest_plays(root, r, hook, day)
            t1 = time.perf_counter()
            roll = rollup_videos(root, day, r)
            t2 = time.perf_counter()
            pub = publish(root, day, db, r)
            t3 = time.perf_counter()
            checks = verify_plays(root, day, redis=r)
            t4 = time.perf_counter()
            assert all(c["ok"] for c in checks), checks
            row = {"day": day, "n": i + 1, "ingest_s": t1 - t0, "rollup_s": t2 - t1,
                   "rollup_totals_s": roll["seconds"]["totals"], "publish_s": t3 - t2, "verify_s": t4 - t3,
                   "run_s": t3 - t0, "run_with_verify_s": t4 - t0, "upserts": pub["upserts"],
                   "unchanged": pub["unchanged"], "bulk_calls": CountingCollection.calls - calls0,
                   "ops": CountingCollection.ops - ops0, "days_folded": len(roll["totals"]["days_folded"]),
                   "data_root_mb": _size(folder) / 2**20, "totals_mb": _size(folder / "totals") / 2**20}
            rows.append(row)
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
        t5 = time.perf_counter()
        full = verify_history(root, redis=r)
        full_s = time.perf_counter() - t5
        e = a.edge

        def med(key, part):
            return statistics.median(x[key] for x in part)

        first, last = rows[:e], rows[-e:]
        summary = {
            "days": a.days, "plays_per_day": a.plays, "vids": a.vids,
            **{f"{k}_first": round(med(k, first), 3) for k in ("run_s", "run_with_verify_s", "verify_s",
                                                                "rollup_totals_s", "publish_s")},
            **{f"{k}_last": round(med(k, last), 3) for k in ("run_s", "run_with_verify_s", "verify_s",
                                                               "rollup_totals_s", "publish_s")},
            "day1_run_s": round(rows[0]["run_s"], 3), "dayN_run_s": round(rows[-1]["run_s"], 3),
            "ratio_run_last_vs_first": round(med("run_s", last) / med("run_s", first), 3),
            "ratio_with_verify_last_vs_first": round(med("run_with_verify_s", last) / med("run_with_verify_s", first), 3),
            "data_root_mb_per_day_first": round(rows[e - 1]["data_root_mb"] / e, 2),
            "data_root_mb_per_day_all": round(rows[-1]["data_root_mb"] / a.days, 2),
            "totals_mb_last": round(rows[-1]["totals_mb"], 2),
            "verify_all_s": round(full_s, 2), "verify_all_ok": all(c["ok"] for c in full),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
        print(json.dumps(summary), flush=True)
    finally:
        r.flushdb()
        if not a.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
