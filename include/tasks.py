"""What each task of ``daily_analytics`` runs: one function per task id, called with the task context.

The glue the DAG file keeps out of itself: the day a run processes, settings and connections, the
day's lease for the plays stages, and honest failure semantics:

* deterministic failures (rejects or quarantine over the threshold, a failed verify check, a cleanup
  without a passing report) raise ``AirflowFailException``: no retries, one alert record;
* anything else (a refused connection, a busy day) keeps its retries;
* ``publish`` skips only when ``video_mongo`` is not defined.
"""

from __future__ import annotations

import datetime as dt
import os
from contextlib import contextmanager
from typing import Any

from video_analytics import conventions as conv


def day_of(context: dict[str, Any]) -> dt.date:
    """The day a run processes: its logical date (the run for D covers [D, D+1))."""
    value = context.get("logical_date") or context.get("data_interval_start")
    if value is None:
        raise ValueError("a daily_analytics run needs a logical date (the day it processes)")
    return value.date()


@contextmanager
def _fail_fast():
    """Deterministic failures fail the task at once (``AirflowFailException``, no retries)."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.online_time.sort_and_partition import RejectThresholdExceeded
    from include.plays.cleanup import CleanupRefused
    from include.verify import VerificationFailed

    try:
        yield
    except (RejectThresholdExceeded, VerificationFailed, CleanupRefused) as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def _exclusive(day: dt.date, stage: str, fn, *args, **kwargs):
    from include.plays.lease import exclusive
    from include.settings import redis_client

    return exclusive(redis_client(), conv.ymd(day), stage, fn, *args, **kwargs)


def wait_for_logs(context) -> bool:
    from include.sensors import logs_ready
    from include.settings import log_dir

    p = context["params"]
    return logs_ready(log_dir(), day_of(context), p["window_days"], p["lookback_days"])


def wait_for_plays(context) -> bool:
    from include.sensors import plays_ready
    from include.settings import data_root, redis_client

    return plays_ready(redis_client(), conv.ymd(day_of(context)), data_root())


def sort_and_partition(context) -> list[dict]:
    from include.online_time.sort_and_partition import sort_and_partition as run
    from include.settings import data_root, log_dir

    p = context["params"]
    with _fail_fast():
        part = run(data_root(), log_dir(), day_of(context), p["window_days"], p["lookback_days"], p["shards"],
                   p["max_reject_rate"])
    return part["shards"]


def _test_delay() -> None:
    """Test-only: with ``VIDEO_TEST_SHARD_DELAY_FILE`` set (the stack tests), sleep the seconds written
    in that file, read at each call, so a test can catch a shard running and kill its worker."""
    path = os.environ.get("VIDEO_TEST_SHARD_DELAY_FILE")
    if not path:
        return
    try:
        with open(path) as fh:
            seconds = float(fh.read().strip() or 0)
    except (OSError, ValueError):
        return
    if seconds > 0:
        import time

        time.sleep(seconds)


def compute_shard(context, shard: dict) -> dict:
    from include.online_time.compute_shard import compute_shard as run
    from include.settings import data_root

    p = context["params"]
    context["shard_label"] = f"shard {shard['index']}"
    _test_delay()
    rules = {k: p[k] for k in ("min_gap", "timeout", "post_multiplier")}
    return run(data_root(), shard, day_of(context), p["window_days"], rules)


def merge_report(context, results: list[dict]) -> dict:
    from include.online_time.merge_report import merge_report as run
    from include.settings import data_root, mongo_db

    # one slice: Airflow's lazy sequence of mapped results then makes one API call, not one per shard
    return run(data_root(), day_of(context), list(results[:]), mongo_db=mongo_db())


def ingest_plays(context) -> dict:
    from include.plays.ingest_plays import ingest_plays as run
    from include.settings import data_root, mongo_db, mysql_hook, redis_client

    day = day_of(context)
    return _exclusive(day, "ingest_plays", run, data_root(), redis_client(), mysql_hook(), conv.ymd(day),
                      mongo_db=mongo_db())


def rollup_videos(context, ingested: dict) -> dict:
    from include.plays.rollup_videos import rollup_videos as run
    from include.settings import data_root

    return _exclusive(day_of(context), "rollup_videos", run, data_root(), ingested["day"])


def publish(context, rolled: dict) -> dict:
    from airflow.sdk.exceptions import AirflowSkipException

    from include.plays.publish import publish as run
    from include.settings import MONGO_CONN_ID, data_root, mongo_db

    db = mongo_db()  # None only when the connection is not defined; any other error fails the task
    if db is None:
        raise AirflowSkipException(
            f"connection {MONGO_CONN_ID!r} is not defined: documents stay in the data root "
            "(`video-analytics export-docs` writes them out)"
        )
    return _exclusive(day_of(context), "publish", run, data_root(), rolled["day"], db)


def verify(context) -> dict:
    from include.settings import data_root, mongo_db
    from include.verify import verify_day

    p, day = context["params"], day_of(context)
    with _fail_fast():
        return _exclusive(day, "verify", verify_day, data_root(), day, window_days=p["window_days"],
                          max_reject_rate=p["max_reject_rate"], max_quarantine_rate=p["max_quarantine_rate"],
                          mongo_db=mongo_db())


def cleanup(context, verified: dict) -> dict:
    from include.plays.cleanup import cleanup as run
    from include.settings import data_root, redis_client

    day = day_of(context)
    with _fail_fast():
        return _exclusive(day, "cleanup", run, data_root(), redis_client(), conv.ymd(day))
