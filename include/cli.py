"""``video-analytics``: the pipeline's stages without Airflow, on the same core and adapters."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

from video_analytics import conventions as conv


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="video-analytics", description=__doc__)
    p.add_argument("--debug", action="store_true", help="print the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)

    ot = sub.add_parser("online-time", help="users' online time over a window of daily logs (CONTRACT §1)")
    ot.add_argument("--log-dir", required=True)
    ot.add_argument("--end", required=True, help="last day of the window, YYYY-MM-DD")
    ot.add_argument("--window", type=int, default=conv.WINDOW_DAYS)
    ot.add_argument("--lookback", type=int, default=conv.LOOKBACK_DAYS)
    ot.add_argument("--shards", type=int, default=conv.SHARDS)
    ot.add_argument("--out", required=True, help=".csv or .parquet")
    ot.add_argument("--work-dir", help="where shards and rejects go (default: a temporary folder)")
    ot.add_argument("--max-reject-rate", type=float, default=conv.MAX_REJECT_RATE)

    pl = sub.add_parser("plays", help="ingest and roll up one day's plays (CONTRACT §2-§5)")
    pl.add_argument("--date", required=True, help="YYYYMMDD")
    pl.add_argument("--data-root", required=True)

    pl.add_argument("--republish", action="store_true",
                    help="send every document of the day, not only those changed since their last publish")

    vf = sub.add_parser("verify", help="check every stored day of plays from the first one (the full check; "
                                       "the DAG's verify checks one day)")
    vf.add_argument("--all", action="store_true", required=True,
                    help="required: the check covers all history, so its cost grows with it")
    vf.add_argument("--data-root", required=True)

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

    from include.plays.legacy_import import add_parser as add_legacy_import

    add_legacy_import(sub)

    sm = sub.add_parser("summary", help="a processed day's verification summary and where its results are")
    sm.add_argument("day", help="YYYY-MM-DD")
    return p


def _fail(command: str, msg: str, code: int = 2) -> int:
    print(f"video-analytics {command}: error: {msg}", file=sys.stderr)
    return code


def online_time(args) -> int:
    """The whole online-time computation into a .csv or .parquet file."""
    from datetime import date

    from include.online_time.pipeline import run_window
    from include.online_time.sort_and_partition import RejectThresholdExceeded

    t0 = time.perf_counter()
    try:
        end = date.fromisoformat(args.end)
    except ValueError:
        return _fail("online-time", f"--end must be a date YYYY-MM-DD (got {args.end!r})")
    out = str(args.out)
    if not out.endswith((".csv", ".parquet")):
        return _fail("online-time", f"--out must end with .csv or .parquet (got {out!r})")
    if args.window < 1 or args.lookback < 0 or args.shards < 1:
        return _fail("online-time", "--window and --shards must be >= 1, --lookback >= 0")
    if not os.path.isdir(args.log_dir):
        return _fail("online-time", f"--log-dir {args.log_dir!r} is not a directory")
    tmp = None if args.work_dir else tempfile.TemporaryDirectory(prefix="online-time-")
    try:
        part, totals = run_window(args.work_dir or tmp.name, args.log_dir, end, out, window_days=args.window,
                                  lookback_days=args.lookback, shards=args.shards,
                                  max_reject_rate=args.max_reject_rate)
    except FileNotFoundError as exc:
        return _fail("online-time", str(exc))
    except RejectThresholdExceeded as exc:
        return _fail("online-time", str(exc), 3)
    finally:
        if tmp is not None:
            tmp.cleanup()
    rate = part["rejects"] / part["rows_in"] if part["rows_in"] else 0.0
    print(
        f"online-time {end}: {totals['users']} users, {totals['online_seconds']} s, {totals['sessions']} sessions; "
        f"{part['rows_in']} rows, {part['rejects']} rejected ({rate:.3%}); {len(part['shards'])} shards; "
        f"{time.perf_counter() - t0:.2f}s -> {out}",
        file=sys.stderr,
    )
    return 0


def plays(args) -> int:
    """Ingest + rollup (+ publish when ``video_mongo`` is defined) + verify of one day."""
    from include import settings
    from include.plays.ingest_plays import ingest_plays
    from include.plays.lease import day_lease
    from include.plays.publish import publish
    from include.plays.rollup_videos import rollup_videos
    from include.plays.verify import verify_plays
    from include.storage import DataRoot

    conv.parse_ymd(args.date)
    root = DataRoot(args.data_root)
    mongo = settings.mongo_db()
    redis = settings.redis_client()
    with day_lease(redis, args.date, "cli"):
        out: dict[str, Any] = {"ingest": ingest_plays(root, redis, settings.mysql_hook(), args.date, mongo_db=mongo)}
        out["rollup"] = rollup_videos(root, args.date, redis)
        if mongo is not None:
            out["publish"] = publish(root, args.date, mongo, redis, force=args.republish)
        out["verify"] = verify_plays(root, args.date, mongo, redis=redis)
    _emit(json.dumps(out, indent=2, default=str))
    return 0 if all(c["ok"] for c in out["verify"]) else 1


def verify(args) -> int:
    """``verify --all``: the full history check of the plays (``include.plays.verify.verify_history``)."""
    from include import settings
    from include.plays.verify import verify_history
    from include.storage import DataRoot

    root = DataRoot(args.data_root)
    out = verify_history(root, settings.mongo_db(), settings.redis_client())
    root.write_json({"ok": all(c["ok"] for c in out), "checks": out}, conv.totals_path("verify-all.json"))
    _emit(json.dumps(out, indent=2, default=str))
    return 0 if all(c["ok"] for c in out) else 1


def export_docs(args) -> int:
    from include.plays.documents import export_docs as run
    from include.storage import DataRoot

    _emit(json.dumps(run(DataRoot(args.data_root), args.out)))
    return 0


def sample_data(args) -> int:
    """Sample logs, plays and categories; connections come from ``AIRFLOW_CONN_VIDEO_*``."""
    import datetime as dt

    from include.sample_logs import generate_logs
    from include.sample_plays import generate_plays
    from include.settings import mysql_hook, redis_client

    day = dt.date.fromisoformat(args.date)
    logs = generate_logs(args.log_dir, day, days=args.days, users=args.users, seed=args.seed)
    made = generate_plays(redis_client(), mysql_hook(), conv.ymd(day), plays=args.plays, seed=args.seed)
    print(f"sample data for {day}: logs {logs}", file=sys.stderr)
    print(f"sample data for {day}: plays {made}", file=sys.stderr)
    return 0


def summary(args) -> int:
    """A short, human summary of a processed day, read back from the data root (``make demo``)."""
    import datetime as dt

    from include.settings import data_root
    from include.verify import summary as report_summary

    day = dt.date.fromisoformat(args.day)
    root = data_root()
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
    lines += [f"data root: {root.uri()}",
              f"  online time: {root.uri(conv.online_time_path(day))}",
              f"  plays:       {root.uri(conv.plays_path(conv.ymd(day)))}",
              f"  report:      {root.uri(conv.report_path(day))}"]
    _emit("\n".join(lines))
    _emit(json.dumps({"ok": report["ok"]}))
    return 0 if report["ok"] else 1


def legacy_import(args) -> int:
    """``legacy-import``: the legacy job's totals as the baseline (``include.plays.legacy_import``)."""
    from include.plays.legacy_import import command

    _emit(json.dumps(command(args), default=str))
    return 0


COMMANDS = {"legacy-import": legacy_import, "online-time": online_time, "plays": plays, "verify": verify, "export-docs": export_docs,
            "sample-data": sample_data, "summary": summary}


_OUT = None  # the real standard output while a command runs (fd 1 points at stderr then)


def _emit(text: str) -> None:
    """The command's result: the only thing written to standard output."""
    out = _OUT or sys.stdout
    out.write(text + "\n")
    out.flush()


_CONNECTION_ERRORS = {"redis": "video_redis", "MySQLdb": "video_mysql", "pymongo": "video_mongo"}


def describe_error(exc: BaseException) -> str:
    """One line that names the connection (id, host and port) or the path an error is about."""
    from include import settings

    first = (str(exc).strip().splitlines() or [""])[0]
    top = type(exc).__module__.split(".")[0]
    if top in _CONNECTION_ERRORS:
        return (f"connection {settings.describe_connection(_CONNECTION_ERRORS[top])} failed: "
                f"{type(exc).__name__}: {first}")
    if isinstance(exc, OSError) and getattr(exc, "filename", None):
        return f"{exc.filename}: {exc.strerror or first}"
    return f"{type(exc).__name__}: {first}" if not isinstance(exc, LookupError | ValueError) else first


def main(argv: list[str] | None = None) -> int:
    """Run a command. Its result alone goes to standard output (library log lines go to stderr); an
    error prints one line (the traceback with ``--debug``) and exits non-zero."""
    global _OUT
    args = build_parser().parse_args(argv)
    sys.stdout.flush()
    saved = os.dup(1)
    _OUT = os.fdopen(os.dup(saved), "w")
    os.dup2(2, 1)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            import traceback

            traceback.print_exc()
        print(f"video-analytics {args.command}: error: {describe_error(exc)}", file=sys.stderr)
        return 1
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        _OUT.close()
        _OUT = None


if __name__ == "__main__":
    sys.exit(main())
