"""The whole DAG for one day with `airflow dags test`, against real Redis and MariaDB.

Each test gets its own data root, log folder, Redis database and MariaDB database, passed to
Airflow through the standard AIRFLOW_CONN_* / AIRFLOW_VAR_* variables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]
DAY = "2014-01-07"
BIN = Path(sys.executable).parent


@pytest.fixture
def env(tmp_path, mysql_db, redis_db):
    e = os.environ.copy()
    e.update({
        "AIRFLOW_VAR_DATA_ROOT": str(tmp_path / "root"),
        "AIRFLOW_VAR_LOG_DIR": str(tmp_path / "logs"),
        "AIRFLOW_CONN_VIDEO_REDIS": f"redis://127.0.0.1:6379/{redis_db.connection_pool.connection_kwargs['db']}",
        "AIRFLOW_CONN_VIDEO_MYSQL": f"mysql://video:video@127.0.0.1:3306/{mysql_db}",
        "VIDEO_RETRY_DELAY_SECONDS": "1",
        "VIDEO_DEADLINE": "off",  # airflow dags test cannot run a DAG with a deadline (README)
    })
    e.pop("AIRFLOW_CONN_VIDEO_MONGO", None)
    subprocess.run([BIN / "video-analytics", "sample-data", "--date", DAY, "--log-dir", e["AIRFLOW_VAR_LOG_DIR"],
                    "--plays", "800", "--users", "300"], env=e, check=True, timeout=300, cwd=ROOT)
    return e


def dags_test(env, day=DAY, conf=None):
    cmd = [BIN / "airflow", "dags", "test", "daily_analytics", day]
    if conf:
        cmd += ["--conf", json.dumps(conf)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_day_runs_end_to_end_and_rerun_is_identical(env, redis_db):
    first = dags_test(env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    root = Path(env["AIRFLOW_VAR_DATA_ROOT"])
    report = json.loads((root / "reports" / f"{DAY}.json").read_text())
    assert report["ok"] is True and report["failed"] == []
    assert report["checks"]["online_time"] and report["checks"]["plays"]
    result = pq.read_table(root / "online_time" / DAY / "online_time.parquet")
    assert result.num_rows > 0 and result.column_names[:3] == ["userid", "online_seconds", "sessions"]
    # cleanup removed the archived plays from T_endlist_D
    assert redis_db.llen("T_endlist_20140107") == 0
    docs1 = export(env, root)
    assert docs1, "no documents exported"
    # each log parsed once: the shard group made the day summaries, the windows task parsed nothing
    part = json.loads((root / "online_time" / DAY / "partition.json").read_text())
    assert part["mode"] == "summaries" and len(part["days_parsed"]) == 8 and part["days_reused"] == []
    for w in (1, 7):
        assert json.loads((root / "online_time" / DAY / f"w{w}" / "totals.json").read_text())["days_parsed"] == []

    second = dags_test(env)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert pq.read_table(root / "online_time" / DAY / "online_time.parquet").equals(result)
    assert export(env, root) == docs1
    part = json.loads((root / "online_time" / DAY / "partition.json").read_text())
    assert part["days_parsed"] == [] and len(part["days_reused"]) == 8  # the re-run parsed nothing


def export(env, root) -> dict[str, list]:
    out = root.parent / "export"
    subprocess.run([BIN / "video-analytics", "export-docs", "--data-root", str(root), "--out", str(out)],
                   env=env, check=True, timeout=300)
    return {p.name: sorted(p.read_text().splitlines()) for p in sorted(out.glob("*.jsonl"))}


def test_rejects_over_threshold_fail_the_run_and_alert(env):
    res = dags_test(env, conf={"max_reject_rate": 0.0})
    assert res.returncode != 0, "a day over the reject threshold must fail"
    root = Path(env["AIRFLOW_VAR_DATA_ROOT"])
    rejects = pq.read_table(root / "online_time" / DAY / "rejects.parquet")
    assert rejects.num_rows > 0 and {"file", "line", "reason"} <= set(rejects.column_names)
    alerts = list((root / "alerts").rglob("*.json"))
    # a deterministic failure: no retries (try 1 of 1), exactly one alert record
    assert [p.name for p in alerts] == ["online_time.sort_and_partition-try1.json"], alerts
    record = json.loads(alerts[0].read_text())
    assert "AirflowFailException" in record["exception"] and "RejectThresholdExceeded" in record["exception"]
