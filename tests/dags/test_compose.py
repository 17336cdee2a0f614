"""docker-compose.yml: `docker-compose config` accepts it and the resolved stack is the intended one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
                    "airflow-worker", "airflow-triggerer"]
DATA_SERVICES = ["postgres", "redis", "redis-data", "mongo", "mysql"]


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


def test_commands_and_health(compose):
    services = compose["services"]
    assert services["airflow-dag-processor"]["command"] in ("dag-processor", ["dag-processor"])
    assert services["airflow-apiserver"]["command"] in ("api-server", ["api-server"])
    for name in AIRFLOW_SERVICES + DATA_SERVICES:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert "/api/v2/monitor/health" in " ".join(services["airflow-apiserver"]["healthcheck"]["test"])


def test_worker_is_scalable(compose):
    assert "container_name" not in compose["services"]["airflow-worker"]


def test_data_service_versions(compose):
    services = compose["services"]
    assert services["mongo"]["image"].split(":")[1].startswith("7")
    assert services["mysql"]["image"].split(":")[1].startswith("8")


def test_dockerfile_builds_from_official_image(compose):
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM apache/airflow:3.3.2" in dockerfile.splitlines()
    assert "requirements.txt" in dockerfile and "pip install --no-cache-dir --no-deps /opt/video" in dockerfile
    assert compose["services"]["airflow-apiserver"]["build"]["context"] == str(ROOT)


def test_seed_runs_the_sample_data_cli(compose):
    seed = compose["services"]["seed-sample-data"]
    cmd = " ".join(seed["command"]) if isinstance(seed["command"], list) else seed["command"]
    assert "video-analytics sample-data --date" in cmd and "--log-dir /opt/airflow/data/logs" in cmd
    assert seed["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert seed["restart"] == "no"
