"""What every command shares: dates in either form, the data root and log folder, output, errors."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from video_analytics import conventions as conv

_OUT = None  # the real standard output while a command runs (fd 1 points at stderr then)


def day(text: str) -> dt.date:
    """A day written ``YYYY-MM-DD`` or ``YYYYMMDD`` (argparse type)."""
    try:
        return conv.as_date(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a date YYYY-MM-DD or YYYYMMDD (got {text!r})") from None


def emit(text: str) -> None:
    """The command's result: the only thing written to standard output."""
    out = _OUT or sys.stdout
    out.write(text + "\n")
    out.flush()


def fail(command: str, msg: str, code: int = 2) -> int:
    print(f"video-analytics {command}: error: {msg}", file=sys.stderr)
    return code


def warn(command: str, msg: str) -> None:
    print(f"video-analytics {command}: warning: {msg}", file=sys.stderr)


def data_root(args):
    """``--data-root``, else the ``data_root`` Variable (``AIRFLOW_VAR_DATA_ROOT``)."""
    from include import settings
    from include.storage import DataRoot

    return DataRoot(args.data_root) if args.data_root else settings.data_root()


def log_dir(args) -> str:
    """``--log-dir``, else the ``log_dir`` Variable (``AIRFLOW_VAR_LOG_DIR``)."""
    from include import settings

    return args.log_dir or settings.log_dir()


def day_lease(args, command: str):
    """The day's lease in Redis (the DAG's tasks of the same day wait for it), and the client."""
    from include import settings
    from include.plays.lease import day_lease as lease

    redis = settings.redis_client()
    return redis, lease(redis, conv.ymd(args.date), command)
