"""Requests made to an S3-compatible store per day, by stage and kind (PUT, GET, HEAD, LIST, DELETE, POST):
the data root and the action logs on a private moto server (tests/support/s3.py), counted from its request
log. The stages are the DAG's, called in this process: the collector's log upload, sort_and_partition,
compute_shard x shards, merge_report, the plays' ingest + rollup + verify (as `video-analytics plays`), the
day's verify, and two dashboard page loads (the second one served from the ETag cache).

    PYTHONPATH=.:plugins .venv/bin/python bench/bench_s3_requests.py --users 2000 --plays 20000 --shards 8
    # full size: a 1M-play day (realistic viewing model) and the 10M-event week (7+1 days of logs)
    PYTHONPATH=.:plugins .venv/bin/python bench/bench_s3_requests.py --events 10M --plays 1M --shards 8

Needs Redis (VIDEO_REDIS_PORT, db VIDEO_BENCH_REDIS_DB, default 12, flushed) and MariaDB as the tests do,
and moto (`scripts/moto.sh install`). Counts depend on the number of files, not their size (reads of a big
object are ranged GETs of Arrow's read size, 64 MiB windows for Parquet). Each stage's wall time is printed
too, as a note only (moto is a Python server on the same machine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--date", default="2014-01-07")
    ap.add_argument("--users", type=int, help="users in the logs (default 2000; with --events, events // 100)")
    ap.add_argument("--events", type=_count, help="log lines over the 8-day window (default users x 8 x 12)")
    ap.add_argument("--plays", type=_count, default=20000, help="plays of the day (realistic viewing model)")
    ap.add_argument("--shards", type=int, default=8)
    args = ap.parse_args()
    if args.users is None:
        args.users = max(1000, args.events // 100) if args.events else 2000
    end = dt.date.fromisoformat(args.date)
    db = int(os.environ.get("VIDEO_BENCH_REDIS_DB", "12"))
    port = os.environ.get("VIDEO_REDIS_PORT", "6379")
    from tests.support.plays import mysql_conn

    mysql = f"test_bench_{uuid.uuid4().hex[:8]}"
    conn = mysql_conn()
    conn.cursor().execute(f"CREATE DATABASE `{mysql}`")
    os.environ.update({"AIRFLOW_CONN_VIDEO_REDIS": f"redis://127.0.0.1:{port}/{db}",
                       "AIRFLOW_CONN_VIDEO_MYSQL": f"mysql://video:video@127.0.0.1:3306/{mysql}"})
    os.environ.pop("AIRFLOW_CONN_VIDEO_MONGO", None)
    import redis

    redis.Redis(port=int(port), db=db).flushdb()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rows = run(Path(tmp), end, args)
    finally:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{mysql}`")
        conn.close()
        redis.Redis(port=int(port), db=db).flushdb()
    kinds = ["PUT", "GET", "HEAD", "LIST", "DELETE", "POST"]
    print(f"| stage ({args.users:,} users, {rows[0][2]:,} events, {args.plays:,} plays, {args.shards} shards) | "
          + " | ".join(kinds) + " | wall s |")
    print("|---|" + "---|" * (len(kinds) + 1))
    total: dict = {}
    for stage, counts, _lines, wall in rows[1:]:
        print(f"| {stage} | " + " | ".join(str(counts.get(k, 0)) for k in kinds) + f" | {wall:.1f} |")
        for k, v in counts.items():
            total[k] = total.get(k, 0) + v
    print("| **total** | " + " | ".join(f"**{total.get(k, 0)}**" for k in kinds) + " | |")


def _count(text: str) -> int:
    """``20000``, ``1M`` or ``2.5M``."""
    t = text.strip().upper()
    return int(float(t[:-1]) * 1_000_000) if t.endswith("M") else int(t)


def run(tmp: Path, end: dt.date, args) -> list:
    """``[(None, {}, log lines, 0), (stage, request counts, 0, wall seconds), …]``."""
    from include import dashboard, settings
    from include.online_time.compute_shard import compute_shard
    from include.online_time.logs import write_done_markers
    from include.online_time.merge_report import merge_report
    from include.online_time.sort_and_partition import sort_and_partition
    from include.online_time.windows import run_windows
    from include.plays.ingest_plays import ingest_plays
    from include.plays.rollup_videos import rollup_videos
    from include.plays.verify import verify_plays
    from include.sample_logs import generate_logs
    from include.sample_plays import generate_plays
    from include.storage import DataRoot
    from include.verify import build_report  # noqa: F401 (the DAG's verify writes through it)
    from tests.support.s3 import s3_server
    from video_analytics import conventions as conv
    from video_analytics.online_time import Rules

    logs = tmp / "logs"
    made = generate_logs(str(logs), end, days=8, users=args.users, seed=7, events=args.events)
    write_done_markers(made["files"])
    generate_plays(settings.redis_client(), settings.mysql_hook(), conv.ymd(end), plays=args.plays, seed=7)
    rows: list = [(None, {}, made["events"], 0.0)]
    with s3_server(tmp) as s3:
        s3.create_bucket("video-bench")
        os.environ["AIRFLOW_CONN_VIDEO_STORAGE"] = s3.connection()
        mark, t0 = s3.mark(), time.perf_counter()

        def step(name: str) -> None:
            nonlocal mark, t0
            rows.append((name, dict(s3.requests(mark)), 0, time.perf_counter() - t0))
            print(f"{name}: {rows[-1][1]} in {rows[-1][3]:.1f} s", file=sys.stderr, flush=True)
            mark, t0 = s3.mark(), time.perf_counter()

        from include.object_store import upload_folder

        upload_folder(str(logs), "s3://video-bench/logs")
        step(f"collector: upload {len(list(logs.iterdir()))} log files")
        root = DataRoot("s3://video-bench/root")
        # as the DAG runs them: the shard group over the day summaries, then the 1/7/30 windows from them
        part = sort_and_partition(root, "s3://video-bench/logs", end, shards=args.shards, summaries=Rules())
        step(f"online_time.sort_and_partition ({part.get('mode', 'full')}, days parsed: "
             f"{len(part.get('days_parsed', []))})")
        results = [compute_shard(root, s, end) for s in part["shards"]]
        step(f"online_time.compute_shard x {args.shards}")
        merge_report(root, end, results)
        step("online_time.merge_report")
        run_windows(root, "s3://video-bench/logs", end, (1, 7, 30), rules=Rules(), skip_missing=True)
        step("online_time.windows (w30 skipped: 8 days of logs)")
        redis, day = settings.redis_client(), conv.ymd(end)
        ingest_plays(root, redis, settings.mysql_hook(), day)
        step("plays.ingest")
        rollup_videos(root, day, redis)
        step("plays.rollup_videos")
        verify_plays(root, day, None, redis=redis)
        step("plays verify (`video-analytics plays`)")
        subprocess.run([sys.executable, "-m", "include.cli", "verify", "--date", end.isoformat(), "--data-root",
                        root.url], check=False, stdout=subprocess.DEVNULL, cwd=ROOT, env=os.environ)
        step("verify (reports/D.json)")
        for n in (1, 2):
            dashboard.history(root)
            dashboard.top_videos(root, end.isoformat())
            dashboard.online_seconds(root, end.isoformat())
            step(f"dashboard: overview + day page, load {n}")
    return rows


if __name__ == "__main__":
    main()
