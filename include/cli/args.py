"""The ``video-analytics`` parser: one subcommand per stage of ``daily_analytics``, the same
option names for the same things (``--date`` in either form, ``--data-root``, ``--log-dir``,
the DAG's params)."""

from __future__ import annotations

import argparse

from include.cli.common import day
from video_analytics import conventions as conv

DESCRIPTION = ("The pipeline's stages without Airflow, on the same core and adapters. Days are written "
               "YYYY-MM-DD or YYYYMMDD; --data-root and --log-dir default to the data_root and log_dir "
               "Variables (AIRFLOW_VAR_*); connections come from AIRFLOW_CONN_VIDEO_*.")
DATA_ROOT_HELP = "the data root (default: the data_root Variable, AIRFLOW_VAR_DATA_ROOT)"
LOG_DIR_HELP = "the action-log folder (default: the log_dir Variable, AIRFLOW_VAR_LOG_DIR)"
DATE_HELP = "the day, YYYY-MM-DD or YYYYMMDD"


class Parser(argparse.ArgumentParser):
    """Usage errors are one line: ``video-analytics <command>: error: <what>``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="print the traceback of an error")


def _date(p, required: bool = True, *aliases: str) -> None:
    p.add_argument("--date", *aliases, dest="date", type=day, required=required, help=DATE_HELP)


def _data_root(p, help_text: str = DATA_ROOT_HELP) -> None:
    p.add_argument("--data-root", help=help_text)


def _window(p) -> None:
    p.add_argument("--window", type=int, default=conv.WINDOW_DAYS, help="days in the online-time window (param window_days)")
    p.add_argument("--lookback", type=int, default=conv.LOOKBACK_DAYS,
                   help="days read before the window (param lookback_days)")


def _reject(p) -> None:
    p.add_argument("--max-reject-rate", type=float, default=conv.MAX_REJECT_RATE,
                   help="fail when rejected log rows pass this share (param max_reject_rate)")


def _quarantine(p) -> None:
    p.add_argument("--max-quarantine-rate", type=float, default=conv.MAX_QUARANTINE_RATE,
                   help="fail when quarantined plays pass this share (param max_quarantine_rate)")


def _online_time(sub) -> None:
    ot = sub.add_parser("online-time", help="users' online time over a window of daily logs (CONTRACT §1)")
    ot.add_argument("--log-dir", required=True, help="the action-log folder")
    _date(ot, True, "--end")
    _window(ot)
    ot.add_argument("--shards", type=int, default=conv.SHARDS,
                    help="shards of the sorting fallback (logs whose users' times go back)")
    ot.add_argument("--out", required=True, help=".csv or .parquet")
    ot.add_argument("--data-root", "--work-dir", dest="data_root",
                    help="where day summaries are kept and reused (each log parsed once), results go to "
                         "online_time/<end>/w<window>/, and accepted-missing days are read (default: none, "
                         "every file of the window is read)")
    ot.add_argument("--json", action="store_true", help="print the run's totals as one JSON object "
                                                        "(with days_parsed and days_reused)")
    _reject(ot)
    ot.add_argument("--min-gap", type=int, default=conv.MIN_GAP, help="gaps shorter than this (s) add no time")
    ot.add_argument("--timeout", type=int, default=conv.TIMEOUT, help="a longer gap (s) ends the session")
    ot.add_argument("--post-multiplier", type=int, default=conv.POST_MULTIPLIER,
                    help="a session with a post counts this many times")
    ck = sub.add_parser("check-logs", help="the wait_for_logs sensor: is every log of the window complete "
                                          "(.done marker or next day's file) or accepted missing?")
    ck.add_argument("--log-dir", help=LOG_DIR_HELP)
    _date(ck)
    _window(ck)
    _data_root(ck)
    am = sub.add_parser("accept-missing", help="accept a day's lost log: its windows run without it and say so")
    _date(am)
    _data_root(am)
    am.add_argument("--reason", default="", help="why the day is lost (kept with the acceptance)")
    am.add_argument("--by", help="who accepts it (default: the current user)")


def _plays(sub) -> None:
    pl = sub.add_parser("plays", help="ingest, roll up (+ publish when video_mongo is defined) and verify one "
                                      "day's plays (CONTRACT §2-§5)")
    _date(pl)
    _data_root(pl)
    _quarantine(pl)
    pl.add_argument("--republish", action="store_true",
                    help="send every document of the day, not only those changed since their last publish")
    vf = sub.add_parser("verify", help="the DAG's verify of one day (--date: writes reports/D.json), or the full "
                                       "check of every stored day of plays (--all)")
    which = vf.add_mutually_exclusive_group(required=True)
    which.add_argument("--date", type=day, help=DATE_HELP)
    which.add_argument("--all", action="store_true", help="every day from the first: its cost grows with history")
    _data_root(vf)
    vf.add_argument("--window", type=int, default=conv.WINDOW_DAYS, help="the online-time window checked (--date)")
    _reject(vf)
    _quarantine(vf)
    cl = sub.add_parser("cleanup", help="after a passing verify: remove the archived plays from T_endlist_D")
    _date(cl)
    _data_root(cl)
    ex = sub.add_parser("export-docs", help="write every document that would be published, one JSON-lines "
                                            "file per collection")
    _data_root(ex)
    ex.add_argument("--out", required=True, help="the folder for <collection>.jsonl")


def _days(sub) -> None:
    sd = sub.add_parser("sample-data", help="generate sample logs (with .done markers), plays (Redis) and "
                                            "categories (MySQL) for a date")
    _date(sd)
    sd.add_argument("--log-dir", help=LOG_DIR_HELP)
    sd.add_argument("--days", type=int, default=8, help="days of logs, ending at --date")
    sd.add_argument("--users", type=int, default=2000, help="users in the logs")
    sd.add_argument("--plays", type=int, default=5000, help="plays of the day")
    sd.add_argument("--seed", type=int, default=7, help="the same seed gives the same data")
    sm = sub.add_parser("summary", help="a processed day's verification summary and where its results are")
    sm.add_argument("day", nargs="?", type=day, help="the day (or --date)")
    sm.add_argument("--date", dest="date", type=day, help=DATE_HELP)
    _data_root(sm)


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="video-analytics", description=DESCRIPTION)
    p.add_argument("--debug", action="store_true", help="print the traceback of an error")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _online_time(sub)
    _plays(sub)
    _days(sub)
    from include.prune import add_parser  # `prune` (retention): parser and handler in include/prune.py

    add_parser(sub)
    from include.plays.legacy_import import add_parser as add_legacy_import  # `legacy-import` (cutover)

    add_legacy_import(sub)
    for name, sp in sub.choices.items():
        sp.prog = f"video-analytics {name}"
        _common(sp)
    return p
