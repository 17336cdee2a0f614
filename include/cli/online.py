"""Commands of the online-time part: ``online-time``, ``check-logs``, ``accept-missing``."""

from __future__ import annotations

import os
import sys
import tempfile
import time

from include import settings
from include.cli.common import data_root, emit, fail, log_dir, warn


def _warn_incomplete(log_dir_: str, end, window: int, lookback: int) -> None:
    """Say which of the window's files had no sign of being complete (CONTRACT §1): read as they stand."""
    from include.online_time.logs import log_status
    from video_analytics import conventions as conv
    from video_analytics import online_time as core

    before, days = core.window_dates(end, window, lookback)
    for d in before + days:
        if log_status(log_dir_, d) == "no sign of being complete":
            warn("online-time", f"{os.path.join(log_dir_, conv.log_file_name(d))} has no sign of being complete "
                                f"(no .done marker, no next day's file): read as it stands")


def _summarised(args, rules: dict) -> tuple[dict, dict]:
    """The window from the day summaries in ``--data-root`` (parsing only the days without one)."""
    from include.online_time.pipeline import write_out
    from include.online_time.summaries import SummaryCache
    from include.online_time.windows import run_window
    from include.storage import DataRoot
    from video_analytics import conventions as conv
    from video_analytics import online_time as core

    root = DataRoot(os.path.abspath(args.data_root)) if "://" not in args.data_root else DataRoot(args.data_root)
    totals, table = run_window(root, SummaryCache(root, core.Rules(**rules)), args.log_dir, args.date, args.window,
                               args.lookback, report=args.window == conv.WINDOW_DAYS)
    write_out(root, totals, str(args.out), table)
    return {"rows_in": totals["rows_in"], "rejects": totals["rejects"], "shards": []}, totals


def _full(args, rules: dict) -> tuple[dict, dict]:
    """The window from all its files, in a temporary folder, as before summaries."""
    from include.online_time.pipeline import run_window

    tmp = tempfile.TemporaryDirectory(prefix="online-time-")
    try:
        part, totals = run_window(tmp.name, args.log_dir, args.date, str(args.out), window_days=args.window,
                                  lookback_days=args.lookback, shards=args.shards, max_reject_rate=1.0, rules=rules)
    finally:
        tmp.cleanup()
    days = sorted(os.path.basename(f)[:10] for f in part["files"])
    return part, {**totals, "window_days": args.window, "days_parsed": days, "days_reused": [], "mode": "full"}


def online_time(args) -> int:
    """The whole online-time computation into a .csv or .parquet file; with ``--data-root``, from the day
    summaries kept there (each log parsed once); ``--json`` prints the run's totals."""
    import json

    from include.online_time.sort_and_partition import RejectThresholdExceeded, check_reject_rate
    from include.online_time.verify import describe_missing

    t0 = time.perf_counter()
    end, out = args.date, str(args.out)
    if not out.endswith((".csv", ".parquet")):
        return fail("online-time", f"--out must end with .csv or .parquet (got {out!r})")
    if args.window < 1 or args.lookback < 0 or args.shards < 1:
        return fail("online-time", "--window and --shards must be >= 1, --lookback >= 0")
    if args.min_gap < 0 or args.timeout < 1 or args.post_multiplier < 1:
        return fail("online-time", "--min-gap must be >= 0, --timeout and --post-multiplier >= 1")
    if "://" not in args.log_dir and not os.path.isdir(args.log_dir):
        return fail("online-time", f"--log-dir {args.log_dir!r} is not a directory")
    _warn_incomplete(args.log_dir, end, args.window, args.lookback)
    rules = {"min_gap": args.min_gap, "timeout": args.timeout, "post_multiplier": args.post_multiplier}
    try:
        part, totals = (_summarised if args.data_root else _full)(args, rules)
        check_reject_rate(totals["rejects"], totals["rows_in"], args.max_reject_rate,
                          "the rejects of " + (totals.get("rejects_path") or "the window's files"))
    except FileNotFoundError as exc:
        return fail("online-time", str(exc))
    except RejectThresholdExceeded as exc:
        return fail("online-time", str(exc), 3)
    if totals.get("missing_days"):
        warn("online-time", f"the window ran without lost days: {describe_missing(totals['missing_days'])}")
    rate = totals["rejects"] / totals["rows_in"] if totals["rows_in"] else 0.0
    took = time.perf_counter() - t0
    print(
        f"online-time {end}: {totals['users']} users, {totals['online_seconds']} s, {totals['sessions']} sessions; "
        f"{totals['rows_in']} rows, {totals['rejects']} rejected ({rate:.3%}); parsed {len(totals['days_parsed'])} "
        f"day(s), reused {len(totals['days_reused'])}; {took:.2f}s -> {out}",
        file=sys.stderr,
    )
    if getattr(args, "json", False):
        keys = ("end", "window_days", "users", "online_seconds", "sessions", "online_seconds_per_user", "rows_in",
                "rows_parsed", "rejects", "days_parsed", "days_reused", "mode", "missing_days")
        emit(json.dumps({**{k: totals.get(k) for k in keys}, "seconds": round(took, 3), "out": out}))
    return 0


def check_logs(args) -> int:
    """The ``wait_for_logs`` sensor's question, answered once: 0 when the run for ``--date`` may start."""
    from include.online_time.logs import COMPLETE, window_status
    from video_analytics import online_time as core

    logs = log_dir(args)
    root = data_root(args) if args.data_root or settings.env_variable("data_root") else None
    _, window = core.window_dates(args.date, args.window, 0)
    status = window_status(logs, window, root)
    emit("\n".join(f"{d.isoformat()}: {s}" for d, s in status.items()))
    waiting = [d.isoformat() for d, s in status.items() if s not in COMPLETE and s != "accepted missing"]
    if waiting:
        print(f"video-analytics check-logs: not ready: waiting for {', '.join(waiting)} in {logs}", file=sys.stderr)
        return 1
    return 0


def accept_missing(args) -> int:
    """Record in the data root that ``--date``'s log is lost for good."""
    import json

    from include.online_time.logs import accept_missing as accept
    from include.online_time.logs import log_status, missing_path

    root = data_root(args)
    logs = settings.env_variable("log_dir")  # only for the warning below
    record = accept(root, args.date, args.reason, args.by)
    if logs and log_status(logs, args.date) != "missing":
        warn("accept-missing", f"{args.date}'s log exists in {logs}: windows read it as it stands")
    print(f"accepted {args.date} as missing: {root.uri(missing_path(args.date))}", file=sys.stderr)
    emit(json.dumps(record))
    return 0

