"""``video-analytics``: the pipeline's stages without Airflow, on the same core and adapters.

Days are written YYYY-MM-DD or YYYYMMDD; ``--data-root`` and ``--log-dir`` default to the
``data_root`` and ``log_dir`` Variables (``AIRFLOW_VAR_*``); connections come from
``AIRFLOW_CONN_VIDEO_*``."""

from __future__ import annotations

import os
import sys

from include.cli import common


def _commands() -> dict:
    from include import prune
    from include.cli import days, online, plays
    from include.plays import legacy_import

    return {"online-time": online.online_time, "check-logs": online.check_logs,
            "accept-missing": online.accept_missing, "plays": plays.plays, "verify": plays.verify,
            "cleanup": plays.cleanup, "export-docs": plays.export_docs, "sample-data": days.sample_data,
            "summary": days.summary, "prune": prune.cli, "legacy-import": legacy_import.cli}


def build_parser():
    from include.cli.args import build_parser as build

    return build()


EXIT_TRANSIENT = 75  # sysexits' EX_TEMPFAIL: a timed-out, refused or lost connection; run again later


def describe_error(exc: BaseException) -> str:
    """One line that names the connection (id, host and port) or the path an error is about."""
    from include import settings

    first = (str(exc).strip().splitlines() or [""])[0]
    named = settings.connection_failure(exc)
    if named is not None:
        return str(named)
    if isinstance(exc, OSError) and getattr(exc, "filename", None):
        return f"{exc.filename}: {exc.strerror or first}"
    return f"{type(exc).__name__}: {first}" if not isinstance(exc, LookupError | ValueError) else first


def main(argv: list[str] | None = None) -> int:
    """Run a command. Its result alone goes to standard output (library log lines go to stderr); an
    error prints one line (the traceback with ``--debug``) and exits non-zero: ``EXIT_TRANSIENT`` (75)
    when running again later may succeed (a timed-out, refused or lost connection), else 1."""
    args = build_parser().parse_args(argv)
    sys.stdout.flush()
    saved = os.dup(1)
    common._OUT = os.fdopen(os.dup(saved), "w")
    os.dup2(2, 1)
    try:
        return _commands()[args.command](args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if getattr(args, "debug", False):
            import traceback

            traceback.print_exc()
        print(f"video-analytics {args.command}: error: {describe_error(exc)}", file=sys.stderr)
        from include.settings import is_transient

        return EXIT_TRANSIENT if is_transient(exc) else 1
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        common._OUT.close()
        common._OUT = None
