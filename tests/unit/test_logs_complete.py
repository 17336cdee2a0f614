"""Finished logs only (CONTRACT §1): a day's log is complete with its ``.done`` marker or the next
day's file; the sensor waits for every window day; a lost day is accepted explicitly and named."""

from __future__ import annotations

import logging
from datetime import UTC, date

import pytest

from include.online_time.compute_shard import compute_shard
from include.online_time.logs import accept_missing, log_status, missing_path, window_missing
from include.online_time.merge_report import merge_report
from include.online_time.sort_and_partition import sort_and_partition
from include.online_time.stream import stream_window
from include.online_time.verify import verify_online_time
from include.sensors import logs_ready
from include.storage import DataRoot
from video_analytics import online_time as core

D = date(2014, 1, 7)
LINES = "2014-01-0{d} 10:00:00 7 login\n2014-01-0{d} 10:01:00 7 get\n2014-01-0{d} 10:02:00 7 logout\n"


def _log(tmp_path, d: int, text: str | None = None, done: bool = False):
    path = tmp_path / f"2014-01-0{d}.log"
    path.write_text(LINES.format(d=d) if text is None else text)
    if done:
        (tmp_path / f"2014-01-0{d}.log.done").write_text("")
    return path


def test_log_status(tmp_path):
    assert log_status(str(tmp_path), D) == "missing"
    _log(tmp_path, 7)
    assert log_status(str(tmp_path), D) == "no sign of being complete"
    (tmp_path / "2014-01-07.log.done").write_text("")
    assert log_status(str(tmp_path), D) == "done marker"
    _log(tmp_path, 6)
    assert log_status(str(tmp_path), date(2014, 1, 6)) == "next day's file"


def test_the_sensor_waits_for_a_half_written_log_until_its_marker(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="include.sensors")
    _log(tmp_path, 6)
    # the collector is still appending: the last line is cut in the middle
    _log(tmp_path, 7, "2014-01-07 10:00:00 7 login\n2014-01-07 10:01:00 7 ge")
    assert logs_ready(str(tmp_path), D, 2, 1) is False
    assert "2014-01-07.log (no sign of being complete)" in caplog.text
    with open(tmp_path / "2014-01-07.log", "a") as fh:
        fh.write("t\n")
    (tmp_path / "2014-01-07.log.done").write_text("")
    assert logs_ready(str(tmp_path), D, 2, 1) is True  # 2014-01-06 is complete: 2014-01-07 exists


def test_the_next_days_file_completes_a_log_without_markers(tmp_path):
    _log(tmp_path, 6)
    _log(tmp_path, 7)
    assert logs_ready(str(tmp_path), D, 1, 1) is False
    _log(tmp_path, 8)
    assert logs_ready(str(tmp_path), D, 1, 1) is True


def test_a_lost_window_day_waits_until_accepted(tmp_path, caplog):
    logs, root = tmp_path / "logs", DataRoot(str(tmp_path / "root"))
    logs.mkdir()
    _log(logs, 5, done=True)
    _log(logs, 7, done=True)
    assert logs_ready(str(logs), D, 3, 0, root) is False
    assert "2014-01-06.log (missing)" in caplog.text and "accept-missing" in caplog.text
    record = accept_missing(root, date(2014, 1, 6), "disk lost", by="ops")
    assert root.read_json(missing_path(date(2014, 1, 6))) == record and record["accepted_by"] == "ops"
    assert logs_ready(str(logs), D, 3, 0, root) is True
    assert logs_ready(str(logs), D, 3, 0) is False  # the acceptance lives in the data root


def _window_logs(tmp_path):
    logs, root = tmp_path / "logs", DataRoot(str(tmp_path / "root"))
    logs.mkdir()
    _log(logs, 4, done=True)
    _log(logs, 5, done=True)
    _log(logs, 7, done=True)
    return str(logs), root


def test_the_task_group_runs_without_an_accepted_day_and_names_it(tmp_path):
    logs, root = _window_logs(tmp_path)
    with pytest.raises(FileNotFoundError, match="2014-01-06.log.*accept-missing"):
        sort_and_partition(root, logs, D, 3, 1, 1)
    accept_missing(root, date(2014, 1, 6), "disk lost", by="ops")
    part = sort_and_partition(root, logs, D, 3, 1, 1)
    assert [m["day"] for m in part["missing_days"]] == ["2014-01-06"]
    assert part["missing_days"][0]["file"] == "absent" and part["rows_in"] == 9
    results = [compute_shard(root, s, D, 3) for s in part["shards"]]
    totals = merge_report(root, D, results)
    assert totals["missing_days"][0]["reason"] == "disk lost" and totals["online_seconds"] == 2 * 120
    checks = {c["name"]: c for c in verify_online_time(root, D)}
    assert checks["accepted missing days"]["ok"]
    assert "2014-01-06 (file absent; accepted by ops" in checks["accepted missing days"]["detail"]
    assert all(c["ok"] for c in checks.values())
    root.remove(missing_path(date(2014, 1, 6)))  # the acceptance withdrawn: the report says the run is stale
    assert not {c["name"]: c for c in verify_online_time(root, D)}["accepted missing days"]["ok"]


@pytest.mark.skipif(not core.HAVE_FAST, reason="the streaming path needs the C accelerator")
def test_the_streaming_run_names_an_accepted_day(tmp_path):
    logs, root = _window_logs(tmp_path)
    accept_missing(root, date(2014, 1, 6), "")
    part, totals = stream_window(root, logs, D, 3, 1)
    assert [m["day"] for m in totals["missing_days"]] == ["2014-01-06"] == [m["day"] for m in part["missing_days"]]


def test_an_accepted_day_whose_file_exists_is_read_as_it_stands(tmp_path):
    logs, root = _window_logs(tmp_path)
    _log(tmp_path / "logs", 6)
    accept_missing(root, date(2014, 1, 6), "collector died mid-day")
    assert window_missing(root, logs, D, 3)[0]["file"] == "read as it stands"
    assert sort_and_partition(root, logs, D, 3, 1, 1)["rows_in"] == 12


def test_the_dags_sensor_reads_acceptances_from_the_data_root(tmp_path, monkeypatch):
    from datetime import datetime

    from include import tasks

    logs, root = tmp_path / "logs", tmp_path / "root"
    logs.mkdir()
    _log(logs, 7, done=True)
    monkeypatch.setenv("AIRFLOW_VAR_LOG_DIR", str(logs))
    monkeypatch.setenv("AIRFLOW_VAR_DATA_ROOT", str(root))
    context = {"logical_date": datetime(2014, 1, 7, tzinfo=UTC),
               "params": {"window_days": 2, "lookback_days": 1}}
    assert tasks.wait_for_logs.__wrapped__(context) is False
    accept_missing(DataRoot(str(root)), date(2014, 1, 6), "lost")
    assert tasks.wait_for_logs.__wrapped__(context) is True
