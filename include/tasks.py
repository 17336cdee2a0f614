"""What each task of ``daily_analytics`` runs: one function per task id, called with the task context.

The glue the DAG file keeps out of itself: the day a run processes, settings and connections, the
day's lease for the plays stages, and honest failure semantics:

* deterministic failures (rejects or quarantine over the threshold, a failed verify check, a cleanup
  without a passing report) raise ``AirflowFailException``: no retries, one alert record;
* anything else (a refused or timed-out connection, a busy day) keeps its retries; a driver's error
  (Redis, MySQL, MongoDB) becomes one line naming the connection (``conn_errors.connection_failure``);
* ``publish`` skips only when ``video_mongo`` is not defined.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
from contextlib import contextmanager
from typing import Any

from video_analytics import conventions as conv


def task_start(fn):
    """What every task function does first: ``gc.freeze()``.

    The objects alive when a task starts (Airflow, the parsed DAG, providers, imported modules)
    live as long as the task process; frozen, the collector's full collections during the task
    scan only what the task itself allocates. Unfrozen, every full collection walks all of them:
    0.1-0.4 s a time in a process of 0.3-0.7 M objects (``airflow dags test`` runs the scheduler
    loop, the execution API and every task in one process), which is more than a shard's work.
    Nothing is ever unfrozen: the objects frozen are kept alive by the process anyway (a cycle
    that was already garbage when a task started stays in memory, once).

    A driver's error is raised again as ``conn_errors.ConnectionFailed``, one line naming the connection
    (the driver's error chained), so the task log and the alert record say which one failed."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        gc.freeze()
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            from include.conn_errors import connection_failure

            named = connection_failure(exc)
            if named is None:
                raise
            raise named from exc

    return wrapper


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

    from include.errors import CleanupRefused, DocumentTooLarge, RejectThresholdExceeded, VerificationFailed

    try:
        yield
    except (RejectThresholdExceeded, VerificationFailed, CleanupRefused, DocumentTooLarge) as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def _alert(context):
    """``alerts.run_alert`` for this task's run (``late_plays``, ``rates``, ``missing_days``)."""
    from include.alerts import run_alert

    return functools.partial(run_alert, context)


def _refuse_pruned(root, day: str) -> None:
    """A day whose raw snapshot was pruned cannot be re-run: fail at once, without retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from include.prune import DayPruned, refuse_pruned

    try:
        refuse_pruned(root, day)
    except DayPruned as exc:
        raise AirflowFailException(str(exc)) from exc


def _exclusive(day: dt.date, stage: str, fn, /, *args, **kwargs):
    from include.plays.lease import exclusive
    from include.settings import redis_client

    return exclusive(redis_client(), conv.ymd(day), stage, fn, *args, **kwargs)


@task_start
def wait_for_logs(context) -> bool:
    from include.sensors import logs_ready
    from include.settings import data_root, log_dir

    p = context["params"]
    return logs_ready(log_dir(), day_of(context), p["window_days"], p["lookback_days"], data_root())


@task_start
def wait_for_plays(context) -> bool:
    from include.sensors import plays_ready
    from include.settings import data_root, redis_client

    root, day = data_root(), conv.ymd(day_of(context))
    _refuse_pruned(root, day)
    return plays_ready(redis_client(), day, root)


def _rules(params: dict) -> dict:
    """The online-time rule params (``min_gap``, ``timeout``, ``post_multiplier``)."""
    return {k: params[k] for k in ("min_gap", "timeout", "post_multiplier")}


@task_start
def sort_and_partition(context) -> list[dict]:
    """The shards over the window's day summaries (each log parsed once), or over its logs when the summaries
    cannot do the window; the descriptors are the mapped ``compute_shard`` tasks' input."""
    from include.online_time.sort_and_partition import sort_and_partition
    from include.settings import data_root, log_dir
    from video_analytics.online_time import Rules

    p = context["params"]
    rules = Rules(**_rules(p))
    with _fail_fast():
        part = sort_and_partition(data_root(), log_dir(), day_of(context), p["window_days"], p["lookback_days"], p.get("shards"),
                   p["max_reject_rate"], max_shards=task_slots(), summaries=rules)
    return part["shards"]


def task_slots() -> int:
    """How many tasks Airflow runs at once (``[core] parallelism``): the most shards worth making
    when the ``shards`` param is not set (``conv.SHARDS`` when it cannot be read or is not >= 1)."""
    try:
        from airflow.sdk import conf

        slots = conf.getint("core", "parallelism", fallback=conv.SHARDS)
    except Exception:
        return conv.SHARDS
    return slots if slots >= 1 else conv.SHARDS


@task_start
def compute_shard(context, shard: dict) -> dict:
    from include.online_time.compute_shard import compute_shard
    from include.settings import data_root

    p = context["params"]
    context["shard_label"] = f"shard {shard['index']}"
    rules = _rules(p)
    return compute_shard(data_root(), shard, day_of(context), p["window_days"], rules)


@task_start
def merge_report(context, results: list[dict]) -> dict:
    from include.assets import ONLINE_TIME, emit, online_time_metadata
    from include.online_time.merge_report import merge_report
    from include.settings import data_root, mongo_db

    root, day = data_root(), day_of(context)
    # one slice: Airflow's lazy sequence of mapped results then makes one API call, not one per shard
    totals = merge_report(root, day, list(results[:]), mongo_db=mongo_db())
    emit(context, ONLINE_TIME, online_time_metadata(day.isoformat(), totals,
                                                    root.uri(conv.online_time_path(day, "online_time.parquet"))))
    return totals


@task_start
def online_windows(context) -> dict:
    """The ``windows`` param's windows (1, 7, 30 days) ending D from per-day summaries, each in
    ``online_time/D/w<W>/``; a window without all its logs yet is skipped and says why."""
    from include.online_time.windows import WINDOWS, run_windows
    from include.settings import data_root, log_dir
    from video_analytics.online_time import Rules

    p = context["params"]
    rules = Rules(**_rules(p))
    with _fail_fast():
        totals = run_windows(data_root(), log_dir(), day_of(context), p.get("windows") or WINDOWS, p["lookback_days"],
                             p["max_reject_rate"], rules, skip_missing=True)
    keys = ("users", "online_seconds", "sessions", "rejects", "days_parsed", "days_reused", "mode", "skipped")
    return {f"w{w}": {k: t[k] for k in keys if k in t} for w, t in totals.items()}


@task_start
def ingest_plays(context) -> dict:
    from include.plays.ingest_plays import ingest_plays
    from include.settings import data_root, mongo_db, mysql_hook, redis_client

    day = day_of(context)
    root = data_root()
    _refuse_pruned(root, conv.ymd(day))
    return _exclusive(day, "ingest_plays", ingest_plays, root, redis_client(), mysql_hook(), conv.ymd(day),
                      mongo_db=mongo_db())


@task_start
def rollup_videos(context, ingested: dict) -> dict:
    from include.assets import PLAY_DOCUMENTS, emit, play_documents_metadata
    from include.plays.rollup_videos import rollup_videos
    from include.settings import data_root, redis_client

    root, day = data_root(), day_of(context)
    rolled = _exclusive(day, "rollup_videos", rollup_videos, root, ingested["day"], redis_client())
    emit(context, PLAY_DOCUMENTS, play_documents_metadata(day.isoformat(), rolled,
                                                          root.uri(conv.plays_path(ingested["day"], "docs"))))
    return rolled


@task_start
def publish(context, rolled: dict) -> dict:
    from airflow.sdk.exceptions import AirflowSkipException

    from include.plays.publish import publish
    from include.settings import MONGO_CONN_ID, data_root, mongo_db, redis_client

    db = mongo_db()  # None only when the connection is not defined; any other error fails the task
    if db is None:
        raise AirflowSkipException(
            f"connection {MONGO_CONN_ID!r} is not defined: documents stay in the data root "
            "(`video-analytics export-docs` writes them out)"
        )
    from include.assets import PLAY_DOCUMENTS_MONGODB, emit, published_metadata

    day = day_of(context)
    with _fail_fast():
        published = _exclusive(day, "publish", publish, data_root(), rolled["day"], db, redis_client())
    emit(context, PLAY_DOCUMENTS_MONGODB, published_metadata(day.isoformat(), published))
    return published


@task_start
def verify(context) -> dict:
    from include import dashboard
    from include.assets import DAILY_VERIFIED, emit, verified_metadata
    from include.settings import data_root, mongo_db, redis_client
    from include.verify import verify_day

    p, day, root = context["params"], day_of(context), data_root()
    with _fail_fast():
        verified = _exclusive(day, "verify", verify_day, root, day, window_days=p["window_days"],
                              max_reject_rate=p["max_reject_rate"], max_quarantine_rate=p["max_quarantine_rate"],
                              mongo_db=mongo_db(), redis=redis_client(), alert=_alert(context))
    # reached only when every check passed (a failed check fails the task: no asset event)
    report = root.read_json(conv.report_path(day))
    emit(context, DAILY_VERIFIED, verified_metadata(day.isoformat(), report,
                                                    dashboard.day_summary(root, day.isoformat()),
                                                    root.uri(conv.report_path(day))))
    return verified


@task_start
def cleanup(context, verified: dict) -> dict:
    from include.plays.cleanup import cleanup
    from include.settings import data_root, redis_client

    day = day_of(context)
    with _fail_fast():
        return _exclusive(day, "cleanup", cleanup, data_root(), redis_client(), conv.ymd(day), alert=_alert(context))


@task_start
def weekly_summary(context) -> dict:
    """The week ending the newest day in the triggering ``video_daily_verified`` events (a manual run
    without events: the newest day with results)."""
    from include import dashboard
    from include.settings import data_root

    root = data_root()
    events = context.get("triggering_asset_events") or {}
    days = sorted(str(e.extra["day"]) for evs in events.values() for e in evs if (e.extra or {}).get("day"))
    end = days[-1] if days else (dashboard.days(root) or [None])[-1]
    if end is None:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("no day has results yet: nothing to summarise")
    return dashboard.weekly_summary(root, end)
