"""A whole day (`airflow dags test`) with the data root and the action logs on an S3-compatible store (a
private moto server), against the same day on local folders: identical results, and nothing written to a
local data root."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from include.storage import DataRoot
from tests.integration.test_airflow_stack import _home_env, _run, pg_databases  # noqa: F401 (a fixture)
from tests.integration.test_dag_run import BIN, DAY, ROOT, dags_test
from tests.support.s3 import s3_server


@pytest.fixture
def home(tmp_path, pg_databases):  # noqa: F811
    """An Airflow home and metadata DB of this test's own (``airflow dags test`` records its runs there)."""
    env = _home_env(os.environ, tmp_path / "home", tmp_path, 0, "unused", pg_databases())
    env.pop("VIDEO_ASSET_DATA_ROOT", None)
    _run([BIN / "airflow", "db", "migrate"], env, timeout=400)
    return {k: env[k] for k in ("AIRFLOW_HOME", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND",
                                "AIRFLOW__LOGGING__BASE_LOG_FOLDER")}


def _env(tmp: Path, home: dict, redis_client, mysql_db: str, data_root: str, log_dir: str) -> dict:
    e = {**os.environ, **home}  # VIDEO_ASSET_DATA_ROOT (conftest): one Asset URI for both runs on one DB
    db = redis_client.connection_pool.connection_kwargs["db"]
    port = redis_client.connection_pool.connection_kwargs["port"]
    e.update({
        "AIRFLOW_VAR_DATA_ROOT": data_root,
        "AIRFLOW_VAR_LOG_DIR": log_dir,
        "AIRFLOW_CONN_VIDEO_REDIS": f"redis://127.0.0.1:{port}/{db}",
        "AIRFLOW_CONN_VIDEO_MYSQL": f"mysql://video:video@127.0.0.1:3306/{mysql_db}",
        "VIDEO_RETRY_DELAY_SECONDS": "1",
        "VIDEO_DEADLINE": "off",
    })
    e.pop("AIRFLOW_CONN_VIDEO_MONGO", None)
    logs = tmp / "logs"
    subprocess.run([BIN / "video-analytics", "sample-data", "--date", DAY, "--log-dir", str(logs), "--plays", "800",
                    "--users", "300"], env=e, check=True, timeout=300, cwd=ROOT)
    return e


def _results(env: dict) -> dict:
    root = DataRoot(env["AIRFLOW_VAR_DATA_ROOT"])
    out = Path(env["VIDEO_TEST_EXPORT"])
    subprocess.run([BIN / "video-analytics", "export-docs", "--data-root", root.url, "--out", str(out)], env=env,
                   check=True, timeout=300, cwd=ROOT)
    return {
        "report": {k: v for k, v in root.read_json("reports", f"{DAY}.json").items() if k not in ("generated_at",)},
        "online_time": root.read_table("online_time", DAY, "online_time.parquet"),
        "docs": {p.name: sorted(p.read_text().splitlines()) for p in sorted(out.glob("*.jsonl"))},
    }


@pytest.fixture
def mysql_db2(mysql_db):
    """A second scratch MariaDB database, for the second run."""
    from tests.support.plays import mysql_conn

    name = f"test_{uuid.uuid4().hex[:10]}"
    conn = mysql_conn()
    conn.cursor().execute(f"CREATE DATABASE `{name}`")
    yield name
    conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def test_a_day_on_object_storage_equals_the_day_on_local_disk(tmp_path, home, redis_db, oracle_redis, mysql_db,
                                                              mysql_db2):
    local = _env(tmp_path / "local", home, redis_db, mysql_db, str(tmp_path / "local" / "root"),
                 str(tmp_path / "local" / "logs"))
    local["VIDEO_TEST_EXPORT"] = str(tmp_path / "local" / "export")
    run = dags_test(local)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    expected = _results(local)

    with s3_server(tmp_path) as s3:
        s3.create_bucket("video-day")
        os.environ["AIRFLOW_CONN_VIDEO_STORAGE"] = s3.connection()
        try:
            remote = _env(tmp_path / "s3", home, oracle_redis, mysql_db2, "s3://video-day/root", "s3://video-day/logs")
            remote["AIRFLOW_CONN_VIDEO_STORAGE"] = s3.connection()
            remote["VIDEO_TEST_EXPORT"] = str(tmp_path / "s3" / "export")
            logs = DataRoot("s3://video-day/logs")
            for f in sorted((tmp_path / "s3" / "logs").iterdir()):  # the collector's upload
                logs.write_bytes(f.read_bytes(), f.name)
            run = dags_test(remote)
            (tmp_path / "s3-run.log").write_text(run.stdout + run.stderr)
            assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
            got = _results(remote)
            keys = s3.keys("video-day")
        finally:
            os.environ.pop("AIRFLOW_CONN_VIDEO_STORAGE", None)
    assert got["online_time"].equals(expected["online_time"])
    assert got["docs"] == expected["docs"] and got["docs"]
    assert got["report"]["ok"] is True and got["report"]["checks"].keys() == expected["report"]["checks"].keys()
    assert f"root/reports/{DAY}.json" in keys and not [k for k in keys if k.endswith(".tmp")]
    assert not (tmp_path / "s3" / "root").exists() and not list(tmp_path.glob("s3:*"))
