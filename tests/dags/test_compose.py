"""docker-compose.yml: `docker-compose config` accepts it and the resolved stack is the intended one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-worker", "airflow-triggerer"]
DATA_SERVICES = ["postgres", "redis", "redis-data", "mongo", "mysql", "minio"]


@pytest.fixture(scope="module")
def compose() -> dict:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose binary not installed (`make test` installs the Debian package)")
    proc = subprocess.run([exe, "-f", "docker-compose.yml", "config"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)})
    assert proc.returncode == 0, f"docker-compose config failed:\n{proc.stderr}"
    return yaml.safe_load(proc.stdout)


def test_services_present(compose):
    services = compose["services"]
    for name in AIRFLOW_SERVICES + DATA_SERVICES + ["airflow-init", "seed-sample-data"]:
        assert name in services, f"service {name} missing"


def test_airflow_services_share_the_common_settings(compose):
    services = compose["services"]
    for name in AIRFLOW_SERVICES + ["airflow-init"]:
        svc = services[name]
        env = svc["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql"), name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://"), name
        assert env["AIRFLOW_CONN_VIDEO_REDIS"].startswith("redis://redis-data"), name
        assert env["AIRFLOW_CONN_VIDEO_MYSQL"].startswith("mysql://"), name
        assert env["AIRFLOW_CONN_VIDEO_MONGO"].startswith("mongo://mongo:27017/video"), name
        assert env["AIRFLOW_VAR_DATA_ROOT"] and env["AIRFLOW_VAR_LOG_DIR"], name
        assert svc["image"] == services["airflow-apiserver"]["image"], name
        targets = {v["target"] if isinstance(v, dict) else v.split(":")[1] for v in svc["volumes"]}
        assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include"} <= targets, name


def _local_defaults() -> dict[str, str]:
    """scripts/env.sh's settings in a clean environment (its own defaults, not this shell's)."""
    out = subprocess.run(["bash", "-c", f". {ROOT}/scripts/env.sh && env -0"], capture_output=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)}, timeout=30).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def test_executor_broker_and_db_settings_match_the_local_stack(compose):
    local = _local_defaults()
    for name in AIRFLOW_SERVICES + ["airflow-init"]:
        env = compose["services"][name]["environment"]
        for key in ("AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CELERY__WORKER_CONCURRENCY",
                    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT"):
            assert str(env[key]) == local[key], (name, key)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert str(env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"]).lower() == "false", name
        assert local["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"].lower() == "false"
        # metadata DB: the same driver, user, password and database; only the host differs
        db, local_db = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]), urlsplit(
            local["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        assert db.scheme == local_db.scheme == "postgresql+psycopg2", name
        assert (db.username, db.password, db.path, db.port) == (local_db.username, local_db.password,
                                                              local_db.path, local_db.port), name
        assert db.hostname == "postgres" and local_db.hostname == "127.0.0.1", name
        # Celery results in that same DB
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        assert local["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + local["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        # broker: Redis, the same database index, on the broker's own Redis service
        broker, local_broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]), urlsplit(local["AIRFLOW__CELERY__BROKER_URL"])
        assert broker.scheme == local_broker.scheme == "redis", name
        assert broker.path == local_broker.path and broker.port == local_broker.port, name
        assert broker.hostname == "redis" and local_broker.hostname == "127.0.0.1", name
        assert broker.path != urlsplit(local["AIRFLOW_CONN_VIDEO_REDIS"]).path, "broker shares the data's Redis db"


def test_commands_and_health(compose):
    services = compose["services"]
    assert services["airflow-dag-processor"]["command"] in ("dag-processor", ["dag-processor"])
    assert services["airflow-apiserver"]["command"] in ("api-server", ["api-server"])
    for name in AIRFLOW_SERVICES + DATA_SERVICES:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert "/api/v2/monitor/health" in " ".join(services["airflow-apiserver"]["healthcheck"]["test"])


def test_worker_is_scalable(compose):
    assert "container_name" not in compose["services"]["airflow-worker"]


def test_data_redis_persists_as_the_local_one(compose):
    """The collector's Redis keeps its data (append-only file in its volume, fsync every second), with
    the flags scripts/services.sh starts the local Redis with."""
    import re
    import shlex

    svc = compose["services"]["redis-data"]
    local = re.search(r"^REDIS_PERSISTENCE=\((.*)\)", (ROOT / "scripts" / "services.sh").read_text(), re.M)
    flags = shlex.split(local.group(1))
    assert svc["command"][0] == "redis-server" and svc["command"][1:] == flags
    assert flags[:4] == ["--appendonly", "yes", "--appendfsync", "everysec"]
    targets = [v["target"] if isinstance(v, dict) else v.split(":")[1] for v in svc["volumes"]]
    assert "/data" in targets


def test_data_service_versions(compose):
    services = compose["services"]
    assert services["mongo"]["image"].split(":")[1].startswith("7")
    assert services["mysql"]["image"].split(":")[1].startswith("8")


def test_dockerfile_builds_from_official_image(compose):
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM apache/airflow:3.3.2" in dockerfile.splitlines()
    assert "requirements.txt" in dockerfile and '"apache-airflow==3.3.2" /opt/video && pip check' in dockerfile
    assert "--no-deps" not in dockerfile  # the package's declared dependencies are checked
    assert "setup.py" in dockerfile and "gcc" in dockerfile  # the online-time C accelerator is built
    assert compose["services"]["airflow-apiserver"]["build"]["context"] == str(ROOT)


def test_seed_runs_the_sample_data_cli(compose):
    seed = compose["services"]["seed-sample-data"]
    cmd = " ".join(seed["command"]) if isinstance(seed["command"], list) else seed["command"]
    assert "video-analytics sample-data --date" in cmd and "--log-dir /opt/airflow/data/logs" in cmd
    assert seed["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert seed["restart"] == "no"


def test_compose_creates_the_pool_and_connections_the_code_names(compose):
    """compose cannot import the project: its pool and connection names are checked against settings."""
    from include import settings

    init = " ".join(map(str, compose["services"]["airflow-init"].get("command", "")))
    entry = " ".join(map(str, compose["services"]["airflow-init"].get("entrypoint", "") or ""))
    assert f"airflow pools set {settings.PUBLISH_POOL} {settings.PUBLISH_POOL_SLOTS} " in init + " " + entry
    env = compose["services"]["airflow-worker"]["environment"]
    for conn_id in (settings.REDIS_CONN_ID, settings.MYSQL_CONN_ID, settings.MONGO_CONN_ID):
        assert f"AIRFLOW_CONN_{conn_id.upper()}" in env, conn_id


def test_data_root_and_logs_live_on_the_s3_compatible_service(compose):
    """docs/SCALING.md's recipe: the data root, the action logs and the task logs on the object store
    (MinIO), reached through the video_storage connection; its bucket made before any Airflow service."""
    import json

    from include.object_store import CONN_ID

    services = compose["services"]
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    for name in AIRFLOW_SERVICES + ["airflow-init", "seed-sample-data"]:
        env = services[name]["environment"]
        assert env["AIRFLOW_VAR_DATA_ROOT"].startswith("s3://video/"), name
        assert env["AIRFLOW_VAR_LOG_DIR"].startswith("s3://video/"), name
        # task logs: Airflow's remote logging (the amazon provider's S3 task handler) on the same store
        assert env["AIRFLOW__LOGGING__REMOTE_LOGGING"] == "True", name
        assert env["AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER"].startswith("s3://video/"), name
        assert env["AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID"] == CONN_ID, name
        assert "AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS" not in env, name
        conn = json.loads(env[f"AIRFLOW_CONN_{CONN_ID.upper()}"])
        assert conn["conn_type"] == "aws" and conn["extra"]["endpoint_url"] == "http://minio:9000", name
        assert conn["login"] == services["minio"]["environment"]["MINIO_ROOT_USER"], name
        assert conn["password"] == services["minio"]["environment"]["MINIO_ROOT_PASSWORD"], name
    for name in AIRFLOW_SERVICES + ["airflow-init"]:
        assert services[name]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully", name
    seed = services["seed-sample-data"]
    cmd = " ".join(seed["command"]) if isinstance(seed["command"], list) else seed["command"]
    assert "python -m include.object_store upload /opt/airflow/data/logs" in cmd
