"""``video-analytics``: the pipeline's stages without Airflow, on the same core."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="video-analytics", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    ot = sub.add_parser("online-time", help="users' online time over a window of daily logs (CONTRACT §1)")
    ot.add_argument("--log-dir", required=True)
    ot.add_argument("--end", required=True, help="last day of the window, YYYY-MM-DD")
    ot.add_argument("--window", type=int, default=7)
    ot.add_argument("--lookback", type=int, default=1)
    ot.add_argument("--shards", type=int, default=8)
    ot.add_argument("--out", required=True, help=".csv or .parquet")
    ot.add_argument("--work-dir", help="where shards and rejects go (default: a temporary folder)")
    ot.add_argument("--max-reject-rate", type=float, default=0.01)

    pl = sub.add_parser("plays", help="ingest and roll up one day's plays (CONTRACT §2-§5)")
    pl.add_argument("--date", required=True, help="YYYYMMDD")
    pl.add_argument("--data-root", required=True)

    ex = sub.add_parser("export-docs", help="write every document that would be published, one JSON-lines file per collection")
    ex.add_argument("--data-root", required=True)
    ex.add_argument("--out", required=True)

    sd = sub.add_parser("sample-data", help="generate sample logs, plays (Redis) and categories (MySQL) for a date")
    sd.add_argument("--date", required=True, help="YYYY-MM-DD")
    sd.add_argument("--log-dir", required=True)
    sd.add_argument("--days", type=int, default=8)
    sd.add_argument("--users", type=int, default=2000)
    sd.add_argument("--plays", type=int, default=5000)
    sd.add_argument("--seed", type=int, default=7)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "online-time":
        from include.online_time_io import run_cli

        return run_cli(args)
    if args.command == "plays":
        from include.plays_io import run_plays_cli

        return run_plays_cli(args)
    if args.command == "export-docs":
        from include.plays_io import run_export_cli

        return run_export_cli(args)
    if args.command == "sample-data":
        from include.sample_data import run_cli as sample_cli

        return sample_cli(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
