"""Alert e-mails through a real SMTP server (aiosmtpd, started and stopped by pid): what a mail says and
links to, one mail per alert, and a mail server that is down or frozen costs neither the record nor
the task."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import logging
import os
import signal
from types import SimpleNamespace
from urllib.parse import quote

import pytest

from include import alerts
from tests.support.servers import mail_html, mails, redis_server, smtp_server

RUN_ID = "scheduled__2014-01-07T00:00:00+00:00"
BASE = "http://airflow.example:8080"


def _context(task_id="online_time.sort_and_partition", map_index=-1, try_number=3, exc=None) -> dict:
    ti = SimpleNamespace(dag_id="daily_analytics", task_id=task_id, run_id=RUN_ID, map_index=map_index,
                         try_number=try_number, max_tries=2)
    return {"ti": ti, "task_instance": ti, "logical_date": dt.datetime(2014, 1, 7, tzinfo=dt.UTC),
            "exception": exc or ValueError("12 rejected line(s) of 100 (12.0000%) exceed the threshold")}


@pytest.fixture
def smtp(tmp_path, monkeypatch):
    """``smtp_default`` on a test SMTP server, two recipients, the data root and [api] base_url set."""
    with smtp_server(tmp_path) as (port, proc, maildir):
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", f"smtp://127.0.0.1:{port}?disable_tls=true&disable_ssl=true"
                                                        "&from_email=airflow%40example.com")
        monkeypatch.setenv("AIRFLOW_VAR_ALERT_EMAILS", "ops@example.com, oncall@example.com")
        monkeypatch.setenv("AIRFLOW_VAR_DATA_ROOT", str(tmp_path / "root"))
        monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE + "/")
        yield SimpleNamespace(port=port, proc=proc, maildir=maildir, root=tmp_path / "root")


def _records(root) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / "alerts").rglob("*.json"))]


def test_a_failed_task_mails_the_day_the_task_what_failed_and_working_links(smtp):
    alerts.failure_callbacks()[0](_context(map_index=2, task_id="online_time.compute_shard"))
    [mail] = mails(smtp.maildir)
    assert mail["Subject"] == "[daily_analytics] 2014-01-07: task online_time.compute_shard failed"
    assert {a.strip() for a in mail["To"].split(",")} == {"ops@example.com", "oncall@example.com"}
    body = mail_html(mail)
    run = f"{BASE}/dags/daily_analytics/runs/{quote(RUN_ID, safe='')}"
    log = f"{run}/tasks/online_time.compute_shard/mapped/2?try_number=3"
    assert f'href="{run}"' in body and f'href="{log.replace("&", "&amp;")}"' in body
    assert "2014-01-07" in body and "online_time.compute_shard [2], try 3" in body
    assert "12 rejected line(s) of 100" in body
    [rec] = _records(smtp.root)  # the record is still written, with the same links
    assert rec["kind"] == "task_failed" and rec["run_url"] == run and rec["log_url"] == log
    assert rec["day"] == "2014-01-07" and rec["what"].startswith("ValueError: 12 rejected")


def test_a_hostile_exception_text_cannot_inject_html_or_headers(smtp):
    exc = RuntimeError("<script>alert(1)</script>\r\nBcc: evil@example.com")
    alerts.failure_callbacks()[0](_context(exc=exc))
    [mail] = mails(smtp.maildir)
    assert mail["Bcc"] is None and "<script>" not in mail_html(mail)
    assert "&lt;script&gt;" in mail_html(mail)


def test_no_mail_without_recipients_but_the_record(smtp, monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW_VAR_ALERT_EMAILS")
    caplog.set_level(logging.WARNING, logger="include.alerts")
    alerts.failure_callbacks()[0](_context())
    assert mails(smtp.maildir) == [] and len(_records(smtp.root)) == 1
    assert "alert_emails is empty" in caplog.text


@pytest.mark.timeout(90)
@pytest.mark.parametrize("server", ["down", "frozen"])
def test_a_mail_server_down_or_frozen_costs_neither_the_record_nor_the_task(smtp, monkeypatch, caplog, server):
    """A stopped server refuses; a frozen one (SIGSTOP) accepts and never answers: the send gives up
    after VIDEO_SMTP_TIMEOUT_SECONDS, once (no retries), logs one line naming smtp_default, and the
    callback returns (it raises nothing: the task is not failed a second time)."""
    monkeypatch.setenv("VIDEO_SMTP_TIMEOUT_SECONDS", "2")
    if server == "down":
        smtp.proc.terminate()
        smtp.proc.wait(10)
    else:
        os.kill(smtp.proc.pid, signal.SIGSTOP)
    caplog.set_level(logging.ERROR, logger="include")
    alerts.failure_callbacks()[0](_context())
    [rec] = _records(smtp.root)
    assert rec["kind"] == "task_failed"
    failed = [r.getMessage() for r in caplog.records if r.name == "include.alerts" and "e-mail" in r.getMessage()]
    assert len(failed) == 1 and "not sent through connection smtp_default" in failed[0], failed
    assert "\n" not in failed[0]


def test_a_missed_deadline_mails_from_the_triggerer_callback(smtp):
    ctx = {"dag_run": {"dag_id": "daily_analytics", "dag_run_id": RUN_ID, "logical_date": "2014-01-07T00:00:00Z",
                       "state": "running", "run_type": "scheduled"},
           "deadline": {"deadline_time": "2014-01-08T06:00:00Z"}}
    asyncio.run(alerts.deadline_missed(context=ctx, hours=6.0))
    [mail] = mails(smtp.maildir)
    assert mail["Subject"] == "[daily_analytics] 2014-01-07: run not done 6.0 h after its day ended"
    assert f'href="{BASE}/dags/daily_analytics/runs/{quote(RUN_ID, safe="")}"' in mail_html(mail)
    assert "still running 6.0 h after its day ended" in mail_html(mail)
    assert [r["kind"] for r in _records(smtp.root)] == ["deadline_missed"]


def test_late_plays_are_alerted_and_a_rerun_picks_them_up(smtp, tmp_path, mysql_db):
    import redis

    from include.plays.cleanup import cleanup
    from include.storage import DataRoot
    from include.verify import write_report
    from tests.support.plays import categories, mysql_hook, put_play, run_day
    from video_analytics.conventions import parse_ymd

    day = "20140107"
    categories(mysql_db, [], [])
    with redis_server(tmp_path) as (port, _):
        r = redis.Redis(port=port, decode_responses=True)
        for i in range(3):
            put_play(r, day, f"1000001_a{i}")
        root = DataRoot(str(smtp.root))
        out = run_day(root, r, mysql_hook(mysql_db), day)
        write_report(root, parse_ymd(day), {"plays": out["verify"]})
        put_play(r, day, "1000001_late")  # after the snapshot: a late play
        ctx = _context(task_id="cleanup", try_number=1)
        done = cleanup(root, r, day, alert=functools.partial(alerts.run_alert, ctx))
        assert done["remaining"] == 1
        rel = smtp.root / "alerts" / "daily_analytics" / RUN_ID / "late_plays.json"
        rec = json.loads(rel.read_text())
        assert (rec["kind"], rec["count"], rec["list"], rec["sample"]) == ("late_plays", 1, f"T_endlist_{day}",
                                                                          ["1000001_late"])
        assert rec["log_url"].endswith("/tasks/cleanup?try_number=1")
        [mail] = mails(smtp.maildir)
        assert mail["Subject"] == f"[daily_analytics] 2014-01-07: 1 late play(s) left in T_endlist_{day}"
        assert "run 20140107 again" in mail_html(mail)

        again = run_day(root, r, mysql_hook(mysql_db), day, cleanup=True)  # the day run again
        assert again["ingest"]["unique"] == 4 and again["cleanup"]["remaining"] == 0
        assert r.llen(f"T_endlist_{day}") == 0
