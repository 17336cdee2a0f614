"""Failure alerting: alert records in the data root, optional e-mail, and a run deadline.

* ``failure_callbacks()`` is the task-level ``on_failure_callback`` list. Airflow calls it once
  per task try that fails with no retries left (a try that is retried calls
  ``on_retry_callback`` instead), so each exhausted task leaves exactly one record.
* ``AlertRecordNotifier`` writes ``alerts/<dag_id>/<run_id>/<task_id>[-<map_index>]-try<N>.json``
  under the data root (Variable ``data_root`` / ``AIRFLOW_VAR_DATA_ROOT``) and logs it at ERROR.
* ``SmtpWhenConfigured`` sends Airflow's SMTP notification only when, at callback time, an
  ``smtp_default`` connection exists and Variable ``alert_emails`` (comma separated) is set.
* ``deadline_alert()`` fires when a daily run is still not finished ``VIDEO_DEADLINE_HOURS``
  (default 6) after its data interval ends; its callback writes ``alerts/.../deadline.json``
  for scheduled runs (manual runs and backfills of past days are late by construction).

Module-level imports stay light: the DAG file imports this at parse time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from airflow.sdk import BaseNotifier

from include.settings import SMTP_CONN_ID
from video_analytics import conventions as conv

log = logging.getLogger(__name__)



def _data_root_url(data_root: str | None = None) -> str:
    if data_root:
        return data_root
    from include.settings import variable

    return variable("data_root")


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _exception_text(exc: Any) -> str | None:
    if exc is None:
        return None
    if not isinstance(exc, BaseException):
        return str(exc)
    from include.assets import inactive_asset_message

    return inactive_asset_message(exc) or f"{type(exc).__name__}: {exc}"


def alert_record(context: dict[str, Any]) -> dict[str, Any]:
    """The structured alert for a failed task try, from an Airflow task context."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    exc = context.get("exception")
    map_index = getattr(ti, "map_index", -1)
    try:
        log_url = getattr(ti, "log_url", None)
    except Exception:  # log_url needs [api] base_url; never fail an alert on it
        log_url = None
    return {
        "kind": "task_failed",
        "dag_id": getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(ti, "run_id", None) or context.get("run_id") or getattr(dag_run, "run_id", None),
        "logical_date": _iso(context.get("logical_date") or getattr(dag_run, "logical_date", None)),
        "map_index": -1 if map_index is None else int(map_index),
        "try_number": getattr(ti, "try_number", None),
        "max_tries": getattr(ti, "max_tries", None),
        "log_url": log_url,
        "exception": _exception_text(exc),
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
    }


def record_path(record: dict[str, Any]) -> str:
    """Where a task alert goes, relative to the data root."""
    name = str(record["task_id"])
    if record.get("map_index", -1) not in (None, -1):
        name += f"-{record['map_index']}"
    name += f"-try{record.get('try_number')}.json"
    return conv.alert_path(record["dag_id"], record["run_id"], name)


def write_alert(record: dict[str, Any], rel: str, data_root: str | None = None) -> str:
    """Write ``record`` under the data root, log it at ERROR, return its URI."""
    from include.storage import DataRoot

    root = DataRoot(_data_root_url(data_root))
    root.write_json(record, rel)
    uri = root.uri(rel)
    log.error("ALERT %s: %s", uri, json.dumps(record, sort_keys=True, default=str))
    return uri


class AlertRecordNotifier(BaseNotifier):
    """Write a JSON alert record for the failed try to the data root and log it at ERROR."""

    def __init__(self, data_root: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.data_root = data_root

    def notify(self, context: dict[str, Any]) -> None:
        from include.assets import inactive_asset_message

        hint = inactive_asset_message(context.get("exception"))
        if hint:  # Airflow fails the task before it runs: say why, plainly, in the task log
            log.error("%s", hint)
        record = alert_record(context)
        write_alert(record, record_path(record), self.data_root)


class SmtpWhenConfigured(BaseNotifier):
    """Airflow's ``SmtpNotifier``, only if ``smtp_default`` and ``alert_emails`` exist when it fires."""

    def __init__(self, conn_id: str = SMTP_CONN_ID, **kwargs: Any):
        super().__init__(**kwargs)
        self.conn_id = conn_id

    def notify(self, context: dict[str, Any]) -> None:
        from include.settings import alert_emails, has_connection

        if not has_connection(self.conn_id):
            log.info("no %r connection: e-mail alert skipped", self.conn_id)
            return
        to = alert_emails()
        if not to:
            log.warning("%r exists but Variable alert_emails is empty: e-mail alert skipped", self.conn_id)
            return
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        SmtpNotifier(to=to, smtp_conn_id=self.conn_id)(context)


def failure_callbacks(data_root: str | None = None) -> list[BaseNotifier]:
    """The ``on_failure_callback`` list: the alert record, then e-mail when configured."""
    return [AlertRecordNotifier(data_root=data_root), SmtpWhenConfigured()]


# ---- run deadline --------------------------------------------------------------------------


async def deadline_missed(context: dict[str, Any] | None = None, hours: float | None = None,
                          data_root: str | None = None) -> str | None:
    """Deadline callback (runs in the triggerer): write ``alerts/<dag_id>/<run_id>/deadline.json``.

    Only for scheduled runs; manual runs and backfills are skipped (returns ``None``).
    """
    import asyncio

    context = context or {}
    run = context.get("dag_run") or {}
    deadline = context.get("deadline") or {}
    if run.get("run_type") not in (None, "scheduled"):
        # a manual run or a backfill of past days is "late" by construction: not an alert
        log.info("deadline passed for %s run %s: no alert for non-scheduled runs",
                 run.get("run_type"), run.get("dag_run_id"))
        return None
    record = {
        "kind": "deadline_missed",
        "dag_id": run.get("dag_id"),
        "run_id": run.get("dag_run_id") or run.get("run_id"),
        "logical_date": _iso(run.get("logical_date")),
        "data_interval_end": _iso(run.get("data_interval_end")),
        "state": run.get("state"),
        "deadline_time": _iso(deadline.get("deadline_time")),
        "deadline_hours": hours,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(),
    }
    rel = conv.alert_path(record["dag_id"], record["run_id"], "deadline.json")
    return await asyncio.to_thread(write_alert, record, rel, data_root)


def deadline_alert(hours: float | None = None):
    """``DeadlineAlert``: run not done ``hours`` after its data interval ends (logical date + 1 day).

    ``hours`` defaults to ``VIDEO_DEADLINE_HOURS`` (``include.settings.deadline_hours``). Returns
    ``None`` with ``VIDEO_DEADLINE=off``, a setting of the environment (so every parse of
    a deployment gives the same DAG, whatever command parsed it). ``airflow dags test`` needs it:
    Airflow 3.3.2's ``dag.test()`` crashes on a DAG with a deadline when the run finishes
    (``DagRun.update_state`` looks the SDK ``DeadlineAlert`` objects up as database ids); ``make demo``
    and the tests that run ``dags test`` set it.
    """
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    from include.settings import deadline_enabled, deadline_hours

    if not deadline_enabled():
        return None
    hours = deadline_hours() if hours is None else float(hours)
    return DeadlineAlert(
        # the daily data-interval timetable: data interval end = logical date + 1 day
        reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=dt.timedelta(days=1, hours=hours),
        callback=AsyncCallback(deadline_missed, kwargs={"hours": hours}),
        name="daily_analytics_not_done",
    )
