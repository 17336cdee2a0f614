"""The CLI's commands through the installed entry point: dates in both forms, every stage of the
DAG (check-logs, online-time, plays, verify, cleanup, summary) and accepting a lost day."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

from include.online_time.logs import write_done_markers
from include.sample_logs import generate_logs
from include.sample_plays import generate_plays
from tests.support.plays import categories

BIN = Path(sys.prefix) / "bin" / "video-analytics"


def _cli(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def _env(redis_db, mysql_db) -> dict:
    db = redis_db.connection_pool.connection_kwargs["db"]
    return {"AIRFLOW_CONN_VIDEO_REDIS": f"redis://127.0.0.1:6379/{db}",
            "AIRFLOW_CONN_VIDEO_MYSQL": f"mysql://video:video@127.0.0.1:3306/{mysql_db}"}


def test_online_time_says_when_a_log_had_no_sign_of_being_complete(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "2014-01-06.log").write_text("2014-01-06 10:00:00 7 login\n2014-01-06 10:01:00 7 get\n")
    # a writer is still appending to the last day: its last line is cut, there is no .done marker
    (logs / "2014-01-07.log").write_text("2014-01-07 10:00:00 7 get\n2014-01-07 10:01:00 7 lo")
    run = _cli("online-time", "--log-dir", logs, "--date", "20140107", "--window", 2, "--lookback", 0,
               "--out", tmp_path / "o.csv", "--max-reject-rate", 0.5)
    assert run.returncode == 0, run.stderr
    assert "4 rows, 1 rejected" in run.stderr  # read as it stands: the cut line is rejected
    warning = [ln for ln in run.stderr.splitlines() if "warning" in ln]
    assert len(warning) == 1 and str(logs / "2014-01-07.log") in warning[0]
    assert "no sign of being complete" in warning[0] and "2014-01-06.log" not in run.stderr
    run = _cli("check-logs", "--log-dir", logs, "--date", "2014-01-07", "--window", 2)
    assert run.returncode == 1 and "2014-01-07: no sign of being complete" in run.stdout
    assert "waiting for 2014-01-07" in run.stderr
    (logs / "2014-01-07.log.done").write_text("")
    run = _cli("check-logs", "--log-dir", logs, "--date", "2014-01-07", "--window", 2)
    assert run.returncode == 0 and run.stdout.split("\n")[:2] == ["2014-01-06: next day's file",
                                                                  "2014-01-07: done marker"]


def test_an_accepted_lost_day_runs_and_is_named(tmp_path):
    logs, root = tmp_path / "logs", tmp_path / "root"
    write_done_markers(generate_logs(str(logs), date(2014, 1, 7), days=4, users=50,
                                     seed=3)["files"])
    (logs / "2014-01-05.log").unlink()
    args = ("online-time", "--log-dir", logs, "--end", "2014-01-07", "--window", 3, "--out", tmp_path / "o.csv",
            "--data-root", root)
    run = _cli(*args)
    assert run.returncode == 2 and "2014-01-05.log" in run.stderr and "accept-missing" in run.stderr
    run = _cli("check-logs", "--log-dir", logs, "--date", "2014-01-07", "--window", 3, "--data-root", root)
    assert run.returncode == 1 and "2014-01-05: missing" in run.stdout
    run = _cli("accept-missing", "--date", "20140105", "--data-root", root, "--reason", "disk lost", "--by", "ops")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["reason"] == "disk lost"
    assert json.loads((root / "missing" / "2014-01-05.json").read_text())["accepted_by"] == "ops"
    run = _cli("check-logs", "--log-dir", logs, "--date", "2014-01-07", "--window", 3, "--data-root", root)
    assert run.returncode == 0 and "2014-01-05: accepted missing" in run.stdout
    run = _cli(*args)
    assert run.returncode == 0, run.stderr
    assert "without lost days: 2014-01-05 (file absent; accepted by ops" in run.stderr
    totals = json.loads((root / "online_time" / "2014-01-07" / "w3" / "totals.json").read_text())
    assert [m["day"] for m in totals["missing_days"]] == ["2014-01-05"]


def test_a_day_through_every_stage(redis_db, mysql_db, tmp_path):
    env = _env(redis_db, mysql_db)
    categories(mysql_db, [], [])
    logs, root = tmp_path / "logs", tmp_path / "root"
    write_done_markers(generate_logs(str(logs), date(2014, 1, 7), days=8, users=80,
                                     seed=2)["files"])
    generate_plays(redis_db, None, "20140107", plays=200, seed=2)
    run = _cli("online-time", "--log-dir", logs, "--date", "2014-01-07", "--out", tmp_path / "o.parquet",
               "--data-root", root, "--min-gap", 3, "--timeout", 600, "--post-multiplier", 3)
    assert run.returncode == 0, run.stderr
    run = _cli("cleanup", "--date", "2014-01-07", "--data-root", root, env=env)
    assert run.returncode == 1 and len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
    run = _cli("plays", "--date", "2014-01-07", "--data-root", root, "--max-quarantine-rate", 0.5, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    run = _cli("cleanup", "--date", "20140107", "--data-root", root, env=env)
    assert run.returncode == 1 and "refused" in run.stderr and "run verify" in run.stderr
    run = _cli("verify", "--date", "20140107", "--data-root", root, env=env)
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
    assert run.stdout.startswith("verify 2014-01-07: OK") and "[FAIL]" not in run.stdout
    assert json.loads((root / "reports" / "2014-01-07.json").read_text())["ok"]
    llen = redis_db.llen("T_endlist_20140107")
    run = _cli("cleanup", "--date", "2014-01-07", "--data-root", root, env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout)["removed"] == llen and redis_db.llen("T_endlist_20140107") == 0
    for how in (["2014-01-07"], ["--date", "20140107"]):
        run = _cli("summary", *how, "--data-root", root)
        assert run.returncode == 0 and "verify 2014-01-07: OK" in run.stdout


def test_summary_takes_the_data_root_option(tmp_path):
    run = _cli("summary", "--date", "20140107", "--data-root", tmp_path, env={"AIRFLOW_VAR_DATA_ROOT": "/nonexistent"})
    assert run.returncode == 1 and run.stdout == "" and str(tmp_path) in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
