"""Sample data for one date: a window of logs, the day's plays in Redis and the MySQL categories."""

from __future__ import annotations

import datetime as dt
import sys


def run_cli(args) -> int:
    """``video-analytics sample-data``: connections come from ``AIRFLOW_CONN_VIDEO_*``."""
    from include.config import mysql_hook, redis_client
    from include.sample_logs import generate_logs
    from include.sample_plays import generate_plays

    day = dt.date.fromisoformat(args.date)
    logs = generate_logs(args.log_dir, day, days=args.days, users=args.users, seed=args.seed)
    plays = generate_plays(redis_client(), mysql_hook(), day.strftime("%Y%m%d"), plays=args.plays, seed=args.seed)
    print(f"sample data for {day}: logs {logs}", file=sys.stderr)
    print(f"sample data for {day}: plays {plays}", file=sys.stderr)
    return 0
