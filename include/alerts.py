"""Alerts that reach a person: a JSON record in the data root, then an e-mail through ``smtp_default``.

Every alert is written first (``alerts/<dag_id>/<run_id>/<name>.json`` under the data root, logged
at ERROR), then mailed (``send_mail``: the day, the task, what failed, links to the run and
its log; only when ``smtp_default`` and Variable ``alert_emails`` exist). A mail that cannot go is
one ERROR line naming ``smtp_default``: it never fails the task again nor loses the record.

* ``failure_callbacks()`` is the task-level ``on_failure_callback`` list. Airflow calls it once
  per task try that fails with no retries left (a try that is retried calls
  ``on_retry_callback`` instead), so each exhausted task leaves exactly one record and one mail:
  ``<task_id>[-<map_index>]-try<N>.json``.
* ``deadline_alert()`` fires when a daily run is still not finished ``VIDEO_DEADLINE_HOURS``
  (default 6) after its data interval ends; its callback writes and mails ``deadline.json``
  for scheduled runs (manual runs and backfills of past days are late by construction).
* ``run_alert()``, from a task of the run: ``late_plays.json`` (cleanup), ``rates.json`` (a reject or
  quarantine rate past half its threshold) and ``missing_days.json`` (verify).

Module-level imports stay light: the DAG file imports this at parse time.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
from typing import Any
from urllib.parse import quote

from airflow.sdk import BaseNotifier

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


def task_identity(context: dict[str, Any]) -> dict[str, Any]:
    """Which run, day and task try an Airflow task context is."""
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    map_index = getattr(ti, "map_index", -1)
    logical_date = _iso(context.get("logical_date") or getattr(dag_run, "logical_date", None))
    return {
        "dag_id": getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "run_id": getattr(ti, "run_id", None) or context.get("run_id") or getattr(dag_run, "run_id", None),
        "logical_date": logical_date,
        "day": logical_date[:10] if logical_date else None,
        "map_index": -1 if map_index is None else int(map_index),
        "try_number": getattr(ti, "try_number", None),
        "max_tries": getattr(ti, "max_tries", None),
    }


def alert_record(context: dict[str, Any]) -> dict[str, Any]:
    """The structured alert for a failed task try, from an Airflow task context."""
    record = {"kind": "task_failed", **task_identity(context)}
    record["exception"] = record["what"] = _exception_text(context.get("exception"))
    record.update(_links(record))
    record["timestamp"] = dt.datetime.now(dt.UTC).isoformat()
    return record


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


def raise_alert(record: dict[str, Any], rel: str, data_root: str | None = None) -> str:
    """Write the record (``write_alert``), then mail it when e-mail is configured; return its URI."""
    uri = write_alert(record, rel, data_root)
    send_mail(record, uri)
    return uri


def _links(record: dict[str, Any]) -> dict[str, Any]:
    """``run_url`` and (for a task) ``log_url`` from ``[api] base_url``."""
    from include.settings import api_base_url

    base = api_base_url()
    if not (record.get("dag_id") and record.get("run_id")):
        return {}
    out = {"run_url": run_url(base, record["dag_id"], record["run_id"])}
    if record.get("task_id"):
        out["log_url"] = log_url(base, record["dag_id"], record["run_id"], record["task_id"],
                                 record.get("map_index", -1), record.get("try_number"))
    return out


def run_alert(context: dict[str, Any], name: str, kind: str, what: str, data_root: str | None = None,
              **details: Any) -> str:
    """An alert about the run of ``context`` raised by its current task: ``alerts/<dag>/<run>/<name>.json``
    (``kind``, ``what`` in words, ``details``), then the mail. Returns the record's URI."""
    record = {**task_identity(context), "kind": kind, "what": what, **details,
              "timestamp": dt.datetime.now(dt.UTC).isoformat()}
    record.update(_links(record))
    return raise_alert(record, conv.alert_path(record["dag_id"], record["run_id"], f"{name}.json"), data_root)


class AlertRecordNotifier(BaseNotifier):
    """Write a JSON alert record for the failed try to the data root, log it at ERROR, then mail it
    (when ``smtp_default`` and ``alert_emails`` exist; a failed send is logged, never raised)."""

    def __init__(self, data_root: str | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.data_root = data_root

    def notify(self, context: dict[str, Any]) -> None:
        from include.assets import inactive_asset_message

        hint = inactive_asset_message(context.get("exception"))
        if hint:  # Airflow fails the task before it runs: say why, plainly, in the task log
            log.error("%s", hint)
        record = alert_record(context)
        raise_alert(record, record_path(record), self.data_root)


def failure_callbacks(data_root: str | None = None) -> list[BaseNotifier]:
    """The ``on_failure_callback`` list: one notifier, the record then its mail (in that order, so a
    mail server that fails or hangs, bounded by its timeout, cannot cost the record)."""
    return [AlertRecordNotifier(data_root=data_root)]


# ---- e-mail ---------------------------------------------------------------------------------


def run_url(base: str, dag_id: str, run_id: str) -> str:
    """The Airflow 3 UI page of a run: ``<base>/dags/<dag_id>/runs/<run_id>``."""
    return f"{base.rstrip('/')}/dags/{quote(str(dag_id), safe='')}/runs/{quote(str(run_id), safe='')}"


def log_url(base: str, dag_id: str, run_id: str, task_id: str, map_index: int | None = -1,
            try_number: int | None = None) -> str:
    """The UI page of a task instance's log (the form of Airflow's own ``ti.log_url``)."""
    url = f"{run_url(base, dag_id, run_id)}/tasks/{quote(str(task_id), safe='')}"
    if map_index is not None and int(map_index) >= 0:
        url += f"/mapped/{int(map_index)}"
    if try_number:
        url += f"?try_number={int(try_number)}"
    return url


def headline(record: dict[str, Any]) -> str:
    """What happened, in a few words (the subject's end)."""
    kind = record.get("kind")
    if kind == "task_failed":
        return f"task {record.get('task_id')} failed"
    if kind == "deadline_missed":
        return f"run not done {record.get('deadline_hours')} h after its day ended"
    if kind == "late_plays":
        return f"{record.get('count')} late play(s) left in {record.get('list')}"
    if kind == "rate_warning":
        return "; ".join(f"{r['name']} {r['rate']:.2%} past half its threshold {r['threshold']:.2%}"
                         for r in record.get("rates", []))
    if kind == "missing_days":
        return f"window ran without the logs of {', '.join(record.get('days', []))} (accepted as missing)"
    return str(kind)


def compose(record: dict[str, Any], uri: str | None = None) -> tuple[str, str]:
    """``(subject, html body)``: the day, the task, what failed, and links to the run and its log."""
    day = (record.get("day") or record.get("logical_date") or "?")[:10]
    subject = " ".join(f"[{record.get('dag_id')}] {day}: {headline(record)}".split())[:200]
    task = record.get("task_id") or "(the whole run)"
    if record.get("map_index") not in (None, -1):
        task += f" [{record['map_index']}]"
    if record.get("try_number"):
        task += f", try {record['try_number']}"
    rows = [("Day", day), ("Task", task), ("What failed", record.get("what") or headline(record))]
    links = [("Run", record.get("run_url")), ("Log", record.get("log_url"))]
    esc = html.escape
    body = ["<html><body>", f"<h3>{esc(subject)}</h3>", "<table>"]
    body += [f"<tr><th align='left'>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in rows]
    body += [f"<tr><th align='left'>{k}</th><td><a href=\"{esc(v)}\">{esc(v)}</a></td></tr>"
             for k, v in links if v]
    if uri:
        body.append(f"<tr><th align='left'>Alert record</th><td>{esc(uri)}</td></tr>")
    body += ["</table>", f"<p>Run ID: {esc(str(record.get('run_id')))}</p>", "</body></html>"]
    return subject, "\n".join(body)


def _one_line(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:300]


def send_mail(record: dict[str, Any], uri: str | None = None, conn_id: str | None = None) -> bool:
    """Mail ``record`` to Variable ``alert_emails`` through ``conn_id`` when both are set; True when sent.
    Never raises."""
    try:
        from include.settings import SMTP_CONN_ID, alert_emails, has_connection, smtp_hook

        conn_id = conn_id or SMTP_CONN_ID
        if not has_connection(conn_id):
            log.info("no %r connection: e-mail alert skipped", conn_id)
            return False
        to = alert_emails()
        if not to:
            log.warning("%r exists but Variable alert_emails is empty: e-mail alert skipped", conn_id)
            return False
        subject, body = compose(record, uri)
        hook = smtp_hook(conn_id)
        with hook:
            hook.send_email_smtp(to=to, subject=subject, html_content=body,
                                 from_email=hook.from_email or "video-analytics@localhost")
    except Exception as exc:  # the record is written; a mail that cannot go must not fail anything
        log.error("e-mail alert %s not sent through connection %s: %s", uri or record.get("kind"), conn_id,
                  _one_line(exc))
        return False
    log.info("e-mail alert sent to %s: %s", ", ".join(to), subject)
    return True


# ---- run deadline --------------------------------------------------------------------------


async def deadline_missed(context: dict[str, Any] | None = None, hours: float | None = None,
                          data_root: str | None = None) -> str | None:
    """Deadline callback (runs in the triggerer): write and mail ``alerts/<dag_id>/<run_id>/deadline.json``.

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
    record["day"] = (record["logical_date"] or "")[:10] or None
    record["what"] = (f"the run is still {record['state'] or 'not finished'} {hours} h after its day ended "
                      f"(deadline {record['deadline_time']})")
    record.update(_links(record))
    rel = conv.alert_path(record["dag_id"], record["run_id"], "deadline.json")
    return await asyncio.to_thread(raise_alert, record, rel, data_root)


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
