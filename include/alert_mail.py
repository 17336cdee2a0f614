"""The e-mail of an alert record: its subject and body, links to the run and the task's log, sent
through Airflow's ``smtp_default`` connection (``settings.smtp_hook``: a timeout, no retries).

``send(record, uri)`` never raises: an alert whose mail cannot go is still an alert (its record is
written first); the failure is one ERROR line naming ``smtp_default``.
"""

from __future__ import annotations

import html
import logging
from typing import Any
from urllib.parse import quote

from include.settings import SMTP_CONN_ID

log = logging.getLogger(__name__)


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


def send(record: dict[str, Any], uri: str | None = None, conn_id: str = SMTP_CONN_ID) -> bool:
    """Mail ``record`` to Variable ``alert_emails`` through ``conn_id`` when both are set; True when sent.
    Never raises."""
    try:
        from include.settings import alert_emails, has_connection, smtp_hook

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
