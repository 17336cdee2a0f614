"""include.alerts: the alert record written on a failed try, the e-mail gate and the deadline."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from types import SimpleNamespace

from include import alerts, settings


def _context(map_index: int = -1, try_number: int = 3) -> dict:
    ti = SimpleNamespace(
        dag_id="daily_analytics",
        task_id="online_time.compute_shard",
        run_id="scheduled__2014-01-07T00:00:00+00:00",
        map_index=map_index,
        try_number=try_number,
        max_tries=2,
        log_url="http://127.0.0.1:8080/dags/daily_analytics/runs/x/tasks/y?try_number=3",
    )
    return {
        "ti": ti,
        "task_instance": ti,
        "logical_date": dt.datetime(2014, 1, 7, tzinfo=dt.UTC),
        "exception": ValueError("reject rate 5.00% above 1.00%"),
    }


def test_notifier_writes_record_and_logs_error(tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="include.alerts")
    notifier = alerts.AlertRecordNotifier(data_root=str(tmp_path))
    notifier(_context(map_index=4))

    files = list((tmp_path / "alerts").rglob("*.json"))
    expected = (tmp_path / "alerts" / "daily_analytics" / "scheduled__2014-01-07T00:00:00+00:00"
                / "online_time.compute_shard-4-try3.json")
    assert files == [expected]
    rec = json.loads(expected.read_text())
    assert rec["dag_id"] == "daily_analytics"
    assert rec["task_id"] == "online_time.compute_shard"
    assert rec["run_id"] == "scheduled__2014-01-07T00:00:00+00:00"
    assert rec["logical_date"] == "2014-01-07T00:00:00+00:00"
    assert (rec["map_index"], rec["try_number"], rec["max_tries"]) == (4, 3, 2)
    assert rec["log_url"].endswith("try_number=3")
    assert rec["exception"] == "ValueError: reject rate 5.00% above 1.00%"
    assert dt.datetime.fromisoformat(rec["timestamp"]).tzinfo is not None

    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "include.alerts"]
    assert len(errors) == 1 and "online_time.compute_shard-4-try3.json" in errors[0].getMessage()


def test_unmapped_task_name_and_data_root_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_DATA_ROOT", str(tmp_path))
    alerts.AlertRecordNotifier()(_context(map_index=-1, try_number=1))
    names = [p.name for p in (tmp_path / "alerts").rglob("*.json")]
    assert names == ["online_time.compute_shard-try1.json"]


def test_same_try_rewrites_one_record(tmp_path):
    n = alerts.AlertRecordNotifier(data_root=str(tmp_path))
    n(_context())
    n(_context())
    assert len(list((tmp_path / "alerts").rglob("*.json"))) == 1


def test_failure_callbacks_write_the_record_then_mail_it():
    """One notifier: the record first, then the mail (a mail server that fails cannot cost the record)."""
    cbs = alerts.failure_callbacks()
    assert [type(c).__name__ for c in cbs] == ["AlertRecordNotifier"]


def test_no_mail_without_the_smtp_connection(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    monkeypatch.setattr("include.settings.has_connection", lambda conn_id: False)
    caplog.set_level(logging.INFO, logger="include.alerts")
    alerts.AlertRecordNotifier(data_root=str(tmp_path))(_context())
    assert "e-mail alert skipped" in caplog.text
    assert len(list((tmp_path / "alerts").rglob("*.json"))) == 1


def test_links_come_from_the_api_base_url(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com/")
    rec = alerts.alert_record(_context(map_index=4))
    run = "https://airflow.example.com/dags/daily_analytics/runs/scheduled__2014-01-07T00%3A00%3A00%2B00%3A00"
    assert rec["run_url"] == run
    assert rec["log_url"] == f"{run}/tasks/online_time.compute_shard/mapped/4?try_number=3"
    assert rec["day"] == "2014-01-07" and rec["what"] == rec["exception"]


def test_mail_escapes_names_and_messages():
    from include.alerts import compose

    rec = {"kind": "task_failed", "dag_id": "daily_analytics", "day": "2014-01-07", "task_id": "a<b>\r\nBcc: x",
           "what": "<img src=x onerror=alert(1)>", "run_id": "r", "run_url": 'http://h/"><script>'}
    subject, body = compose(rec, "/root/alerts/x.json")
    assert "\n" not in subject and "\r" not in subject
    assert "<img" not in body and "<script>" not in body and "&lt;img" in body
    assert 'href="http://h/&quot;&gt;&lt;script&gt;"' in body


def test_deadline_alert_interval_and_callback(monkeypatch):
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    monkeypatch.delenv("AIRFLOW_VAR_DEADLINE_HOURS", raising=False)
    monkeypatch.setenv("VIDEO_DEADLINE_HOURS", "2.5")
    d = alerts.deadline_alert()
    assert isinstance(d, DeadlineAlert)
    assert d.reference == DeadlineReference.DAGRUN_LOGICAL_DATE
    assert d.interval == dt.timedelta(days=1, hours=2.5)
    assert isinstance(d.callback, AsyncCallback)
    assert d.callback.path == "include.alerts.deadline_missed"
    monkeypatch.delenv("VIDEO_DEADLINE_HOURS")
    monkeypatch.setattr("include.settings.variable", lambda name, default=None: default)
    assert alerts.deadline_alert().interval == dt.timedelta(days=1, hours=6)


def test_deadline_hours_bad_value_falls_back(monkeypatch):
    monkeypatch.setenv("VIDEO_DEADLINE_HOURS", "abc")
    assert settings.deadline_hours() == 6.0


def test_deadline_hours_old_name_still_works_with_a_warning(monkeypatch, caplog):
    """AIRFLOW_VAR_DEADLINE_HOURS looked like a Variable but was read from the environment only: renamed
    VIDEO_DEADLINE_HOURS, the old name kept (deprecated) so a deployment that set it keeps its deadline."""
    monkeypatch.delenv("VIDEO_DEADLINE_HOURS", raising=False)
    monkeypatch.setenv("AIRFLOW_VAR_DEADLINE_HOURS", "3")
    caplog.set_level(logging.WARNING, logger="include.settings")
    assert alerts.deadline_alert().interval == dt.timedelta(days=1, hours=3)
    assert "AIRFLOW_VAR_DEADLINE_HOURS is deprecated" in caplog.text and "VIDEO_DEADLINE_HOURS" in caplog.text
    monkeypatch.setenv("VIDEO_DEADLINE_HOURS", "4")  # the new name wins
    assert settings.deadline_hours() == 4.0


def test_deadline_callback_writes_record(tmp_path, caplog):
    caplog.set_level(logging.ERROR, logger="include.alerts")
    ctx = {
        "dag_run": {"dag_id": "daily_analytics", "dag_run_id": "scheduled__2014-01-07T00:00:00+00:00",
                    "logical_date": "2014-01-07T00:00:00Z", "state": "running", "run_type": "scheduled"},
        "deadline": {"id": "x", "deadline_time": "2014-01-08T06:00:00Z"},
    }
    asyncio.run(alerts.deadline_missed(context=ctx, hours=6.0, data_root=str(tmp_path)))
    path = tmp_path / "alerts" / "daily_analytics" / "scheduled__2014-01-07T00:00:00+00:00" / "deadline.json"
    rec = json.loads(path.read_text())
    assert rec["kind"] == "deadline_missed" and rec["deadline_hours"] == 6.0 and rec["state"] == "running"
    assert "deadline.json" in caplog.text


def test_deadline_callback_skips_backfills_and_manual_runs(tmp_path):
    for run_type in ("backfill", "manual"):
        ctx = {"dag_run": {"dag_id": "daily_analytics", "dag_run_id": f"{run_type}__x", "run_type": run_type}}
        assert asyncio.run(alerts.deadline_missed(context=ctx, hours=6.0, data_root=str(tmp_path))) is None
    assert not (tmp_path / "alerts").exists()


def test_an_inactive_asset_says_the_data_root_changed_and_what_to_do(tmp_path, caplog):
    """Changing data_root under one metadata DB: Airflow fails the producing task before it runs with
    AirflowInactiveAssetInInletOrOutletException; the log and the alert record say why, in one line."""
    from airflow.sdk.definitions.asset import AssetUniqueKey
    from airflow.sdk.exceptions import AirflowInactiveAssetInInletOrOutletException

    from include.assets import ONLINE_TIME

    exc = AirflowInactiveAssetInInletOrOutletException([AssetUniqueKey(name=ONLINE_TIME.name, uri=ONLINE_TIME.uri)])
    caplog.set_level(logging.ERROR, logger="include.alerts")
    alerts.AlertRecordNotifier(data_root=str(tmp_path))({**_context(), "exception": exc})
    rec = json.loads(next((tmp_path / "alerts").rglob("*.json")).read_text())
    msg = rec["exception"]
    assert "\n" not in msg and msg.startswith(f"Asset video_online_time ({ONLINE_TIME.uri}) is inactive")
    assert "data root changed" in msg and "VIDEO_ASSET_DATA_ROOT" in msg and "clear the task" in msg
    assert msg in caplog.text
    other = ValueError("reject rate 5.00% above 1.00%")
    assert alerts.alert_record({**_context(), "exception": other})["exception"] == f"ValueError: {other}"


def _day_with_rates(tmp_path, rows_in, rejects, quarantine_rate):
    from include.storage import DataRoot

    root = DataRoot(str(tmp_path))
    root.write_json({"rows_in": rows_in, "rejects": rejects, "rejects_path": "online_time/2014-01-07/rejects.parquet",
                     "missing_days": []}, "online_time/2014-01-07/partition.json")
    report = {"checks": {"plays": [{"name": "quarantine_rate", "ok": True,
                                    "detail": {"rate": quarantine_rate, "threshold": 0.01, "quarantined": 3}}]}}
    return root, report


def test_rates_past_half_their_threshold_but_within_it(tmp_path):
    from include.verify import rates_past_half

    day = dt.date(2014, 1, 7)
    root, report = _day_with_rates(tmp_path, 1000, 6, 0.004)  # reject 0.6% > 0.5%; quarantine 0.4% < 0.5%
    assert [r["name"] for r in rates_past_half(root, day, report, 0.01, 0.01)] == ["reject rate"]
    root, report = _day_with_rates(tmp_path, 1000, 5, 0.0075)  # exactly half: no; 0.75%: yes
    assert [r["name"] for r in rates_past_half(root, day, report, 0.01, 0.01)] == ["quarantine rate"]
    root, report = _day_with_rates(tmp_path, 1000, 20, 0.5)  # past the threshold: verify fails, no warning
    assert rates_past_half(root, day, report, 0.01, 0.01) == []
    root, report = _day_with_rates(tmp_path, 0, 0, 0.0)  # an empty day
    assert rates_past_half(root, day, report, 0.0, 0.0) == []


def test_warnings_raise_rates_and_missing_days_alerts(tmp_path):
    from include.verify import raise_warnings

    root, report = _day_with_rates(tmp_path, 1000, 7, 0.0)
    part = root.read_json("online_time/2014-01-07/partition.json")
    part["missing_days"] = [{"day": "2014-01-03", "reason": "disk lost", "accepted_by": "ops",
                             "accepted_at": "2014-01-08T09:00:00+00:00", "file": "absent"}]
    root.write_json(part, "online_time/2014-01-07/partition.json")
    raised = []
    raise_warnings(root, dt.date(2014, 1, 7), report, lambda *a, **k: raised.append((a, k)), 0.01, 0.01)
    assert [a[:2] for a, _ in raised] == [("rates", "rate_warning"), ("missing_days", "missing_days")]
    (_, _, what), details = raised[0]
    assert "reject rate 0.70% (7 of 1000) is past half its threshold 1.00%" == what
    assert details["rates"][0]["count"] == 7
    (_, _, what), details = raised[1]
    assert details["days"] == ["2014-01-03"] and "disk lost" in what and "accepted by ops" in what


def test_missing_days_alert_names_the_days_of_every_window(tmp_path):
    """A day only the 30-day window ran without alerts too; each day once; bad manifests do not crash."""
    from include.verify import raise_warnings

    root, report = _day_with_rates(tmp_path, 1000, 0, 0.0)
    lost = {"day": "2013-12-20", "reason": "<script>x</script>", "accepted_by": "ops", "file": "absent"}
    both = {"day": "2014-01-03", "reason": "disk lost", "accepted_by": "ops", "file": "absent"}
    root.write_json({"missing_days": [lost, both]}, "online_time/2014-01-07/w30/totals.json")
    root.write_json({"missing_days": [both]}, "online_time/2014-01-07/w7/totals.json")
    root.write_json({"missing_days": "not a list"}, "online_time/2014-01-07/w1/totals.json")
    root.fs.makedirs(root.path("online_time/2014-01-07/w2"), exist_ok=True)
    with root.fs.open(root.path("online_time/2014-01-07/w2/totals.json"), "wb") as fh:
        fh.write(b"\x00garbage")
    raised = []
    raise_warnings(root, dt.date(2014, 1, 7), report, lambda *a, **k: raised.append((a, k)), 0.01, 0.01)
    assert [a[:2] for a, _ in raised] == [("missing_days", "missing_days")]
    assert raised[0][1]["days"] == ["2013-12-20", "2014-01-03"]


def test_run_alert_writes_the_named_record_with_links(tmp_path, monkeypatch):
    monkeypatch.setattr("include.settings.has_connection", lambda conn_id: False)
    uri = alerts.run_alert(_context(), "late_plays", "late_plays", "2 late", data_root=str(tmp_path), count=2)
    rec = json.loads(open(uri).read())
    assert uri.endswith("/alerts/daily_analytics/scheduled__2014-01-07T00:00:00+00:00/late_plays.json")
    assert (rec["kind"], rec["count"], rec["what"], rec["day"]) == ("late_plays", 2, "2 late", "2014-01-07")
    assert "/runs/scheduled__2014-01-07T00%3A00%3A00%2B00%3A00" in rec["run_url"] and rec["log_url"]


def test_missing_days_read_each_manifest_once_without_asking_first(tmp_path, monkeypatch):
    """One read per manifest, no ``exists`` before it (on an object store a HEAD and a GET where one GET
    does); an absent partition manifest is no alert and no error."""
    from include.verify import window_missing_days

    root, _ = _day_with_rates(tmp_path, 1000, 0, 0.0)
    root.remove("online_time/2014-01-07/partition.json")
    root.write_json({"missing_days": [{"day": "2014-01-03"}]}, "online_time/2014-01-07/w7/totals.json")
    calls = []
    monkeypatch.setattr(type(root), "exists", lambda self, *rel: calls.append(("exists", rel)) or True)
    real = type(root).read_json
    monkeypatch.setattr(type(root), "read_json", lambda self, rel: calls.append(("read", rel)) or real(self, rel))
    assert [m["day"] for m in window_missing_days(root, dt.date(2014, 1, 7))] == ["2014-01-03"]
    assert [c[0] for c in calls] == ["read", "read"]
