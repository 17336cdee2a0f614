"""``sample-data`` and ``summary``: a day's sample input, and a processed day read back."""

from __future__ import annotations

import json
import sys

from include.cli.common import data_root, emit, fail, log_dir
from video_analytics import conventions as conv


def sample_data(args) -> int:
    """Sample logs (each with its ``.done`` marker, as a collector writes), plays and categories;
    connections come from ``AIRFLOW_CONN_VIDEO_*``."""
    from include.online_time.logs import write_done_markers
    from include.sample_logs import generate_logs
    from include.sample_plays import generate_plays
    from include.settings import mysql_hook, redis_client

    day = args.date
    logs = generate_logs(log_dir(args), day, days=args.days, users=args.users, seed=args.seed)
    write_done_markers(logs["files"])
    made = generate_plays(redis_client(), mysql_hook(), conv.ymd(day), plays=args.plays, seed=args.seed)
    print(f"sample data for {day}: logs {logs}", file=sys.stderr)
    print(f"sample data for {day}: plays {made}", file=sys.stderr)
    return 0


def summary(args) -> int:
    """A short, human summary of a processed day, read back from the data root (``make demo``)."""
    from include.online_time.verify import describe_missing
    from include.verify import summary as report_summary

    day = args.day or args.date
    if day is None or (args.day and args.date and args.day != args.date):
        return fail("summary", "give the day once: `summary 2014-01-07` or `summary --date 2014-01-07`")
    root = data_root(args)
    if not root.exists(conv.report_path(day)):
        print(f"no verification report for {day} under {root.uri()}", file=sys.stderr)
        return 1
    report = root.read_json(conv.report_path(day))
    lines = [report_summary(report)]
    totals = conv.online_time_path(day, "totals.json")
    if root.exists(totals):
        t = root.read_json(totals)
        lines.append(f"\nonline time {day}: {t.get('users')} users, {t.get('online_seconds')} s "
                     f"-> {t.get('result_path')}")
        if t.get("missing_days"):
            lines.append(f"  without lost days: {describe_missing(t['missing_days'])}")
    lines += [f"data root: {root.uri()}",
              f"  online time: {root.uri(conv.online_time_path(day))}",
              f"  plays:       {root.uri(conv.plays_path(conv.ymd(day)))}",
              f"  report:      {root.uri(conv.report_path(day))}"]
    emit("\n".join(lines))
    emit(json.dumps({"ok": report["ok"]}))
    return 0 if report["ok"] else 1
