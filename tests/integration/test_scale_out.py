"""Scale-out proof (docs/SCALING.md): the control plane on this machine, two Celery workers as separate
hosts (network namespaces on a bridge, their own hostnames and working directories), sharing nothing but
PostgreSQL, Redis, MariaDB and an S3-compatible store (a private moto server) that holds the data root, the
action logs and the task logs.

A day runs end to end with the same results as on local disks; a worker host whose processes are all
SIGKILLed mid-shard still ends in success with the same results; the UI shows each task's log from the
object store; the dashboard shows the day; nothing is written to a local data root.

Needs root (``ip netns``), moto (``scripts/moto.sh install``) and redis-server; private ports throughout
(its own redis-server, API server, metadata DB), so it runs beside other stacks.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from include.storage import DataRoot
from tests.integration.test_airflow_stack import (  # noqa: F401 (pg_databases is a fixture)
    BIN,
    DAG_ID,
    STACK,
    STACK_HOOKS,
    Api,
    _home_env,
    _run,
    _server_ports,
    _task_instances,
    _trigger,
    _wait_for_dag,
    _wait_runs,
    pg_databases,
)
from tests.integration.test_dag_run import dags_test
from tests.support import netns
from tests.support.s3 import s3_server
from tests.support.servers import free_port

DAY = "2014-04-10"
SHARDS = 8
SHARD_TASK = "online_time.compute_shard"
BUCKET = "video-scale"
SAMPLE = ["--users", "60", "--plays", "150"]
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


def _mysql_db() -> str:
    from tests.support.plays import mysql_conn

    name = f"test_{uuid.uuid4().hex[:10]}"
    conn = mysql_conn()
    conn.cursor().execute(f"CREATE DATABASE `{name}`")
    conn.close()
    return name


def _drop_mysql(names: list[str]) -> None:
    from tests.support.plays import mysql_conn

    conn = mysql_conn()
    for name in names:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def _redis_server(folder: Path, binds: str) -> tuple[int, subprocess.Popen]:
    import redis

    port = free_port()
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", binds,
                             "--dir", str(folder), "--save", "", "--appendonly", "no", "--protected-mode", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 20
    while True:
        try:
            redis.Redis(port=port).ping()
            return port, proc
        except redis.exceptions.ConnectionError:
            assert proc.poll() is None and time.monotonic() < end, "the test's redis-server did not start"
            time.sleep(0.1)


def _online(root: DataRoot):
    return root.read_table("online_time", DAY, "online_time.parquet")


def _export(env: dict, out: Path) -> dict[str, list[str]]:
    _run([BIN / "video-analytics", "export-docs", "--data-root", env["AIRFLOW_VAR_DATA_ROOT"], "--out", str(out)], env)
    return {p.name: sorted(p.read_text().splitlines()) for p in sorted(out.glob("*.jsonl"))}


def _sample_and_upload(env: dict, folder: Path) -> None:
    """Sample plays (Redis, MariaDB) and logs, the logs then put on the store as a collector would."""
    _run([BIN / "video-analytics", "sample-data", "--date", DAY, "--log-dir", str(folder), *SAMPLE], env)
    logs = DataRoot(env["AIRFLOW_VAR_LOG_DIR"])
    for f in sorted(folder.iterdir()):
        logs.write_bytes(f.read_bytes(), f.name)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, pg_databases):  # noqa: F811
    tmp = tmp_path_factory.mktemp("scale_out")
    tag = uuid.uuid4().hex[:5]
    mysql_dbs = [_mysql_db(), _mysql_db()]
    with netns.hosts(tag, ["video-host-a", "video-host-b"]) as (addr, workers), \
            netns.forwarders(addr, [int(os.environ.get("VIDEO_PG_PORT", "5432")),
                                    int(os.environ.get("VIDEO_MYSQL_PORT", "3306"))]), \
            s3_server(tmp, host=addr) as s3:
        rport, rproc = _redis_server(tmp, f"127.0.0.1 {addr}")
        try:
            yield from _cluster(tmp, addr, workers, s3, rport, mysql_dbs, pg_databases)
        finally:
            rproc.terminate()
            rproc.wait(timeout=20)
            _drop_mysql(mysql_dbs)


def _cluster(tmp, addr, workers, s3, rport, mysql_dbs, pg_databases):  # noqa: F811
    s3.create_bucket(BUCKET)
    api_port = free_port()
    storage = s3.connection()
    env = _home_env(os.environ, tmp / "control", tmp / "unused", 0, mysql_dbs[0], pg_databases())
    sql = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("@127.0.0.1:", f"@{addr}:")
    env.pop("VIDEO_ASSET_DATA_ROOT", None)
    env.update({
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql, "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{sql}",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{addr}:{rport}/15",
        "AIRFLOW_CONN_VIDEO_REDIS": f"redis://{addr}:{rport}/0",
        "AIRFLOW_CONN_VIDEO_MYSQL": f"mysql://video:video@{addr}:3306/{mysql_dbs[0]}",
        "AIRFLOW_CONN_VIDEO_STORAGE": storage,
        "AIRFLOW_VAR_DATA_ROOT": f"s3://{BUCKET}/root", "AIRFLOW_VAR_LOG_DIR": f"s3://{BUCKET}/logs",
        "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
        "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"s3://{BUCKET}/task-logs",
        "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": "video_storage",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "socket.gethostname",
        "WORKERS": "0", "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2", "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
        "VIDEO_TEST_SHARD_DELAY_FILE": str(tmp / "shard_delay"),
        "AIRFLOW__API__HOST": addr, **_server_ports(addr, api_port),
        # test-only hook (tests/support/stack_hooks): compute_shard sleeps the seconds in this file
        "PYTHONPATH": os.pathsep.join(p for p in (str(STACK_HOOKS), os.environ.get("PYTHONPATH")) if p),
        "AIRFLOW_STACK_TIMEOUT": "240",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "console"}),
    })
    os.environ["AIRFLOW_CONN_VIDEO_STORAGE"] = storage  # this process reads and writes the store too
    _run([STACK, "init"], env, timeout=400)
    _run([BIN / "airflow", "pools", "set", "video_publish", "1", "MongoDB publishing"], env, timeout=120)
    # the store's credentials live in the metadata DB: the workers get them from the API server
    conn = json.loads(storage)
    _run([BIN / "airflow", "connections", "add", "video_storage", "--conn-json", json.dumps(conn)], env, timeout=120)
    try:
        _run([STACK, "up"], env, timeout=400)
        for w in workers:  # each worker host: its own home and working directory; no storage secret in env
            home = tmp / w.name
            (home / "airflow").mkdir(parents=True)
            wenv = {**env, "AIRFLOW_HOME": str(home / "airflow"),
                    "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "task-logs-local")}
            wenv.pop("AIRFLOW_CONN_VIDEO_STORAGE")
            w.popen(f"{BIN}/airflow celery worker --celery-hostname worker@{w.name} --concurrency 2 "
                    "--skip-serve-logs", wenv, str(home), open(tmp / f"{w.name}.log", "ab"))
        api = Api(env["AIRFLOW__API__BASE_URL"])
        _wait_for_dag(api)
        _wait_workers(tmp, workers)
        yield {"env": env, "api": api, "tmp": tmp, "workers": workers, "s3": s3, "addr": addr, "rport": rport,
               "mysql": mysql_dbs}
    finally:
        for w in workers:
            w.kill_all()
        _run([STACK, "down"], env, timeout=180, check=False)
        os.environ.pop("AIRFLOW_CONN_VIDEO_STORAGE", None)


def _wait_workers(tmp: Path, workers, timeout: float = 180) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if all(f"worker@{w.name} ready." in (tmp / f"{w.name}.log").read_text(errors="replace") for w in workers):
            return
        time.sleep(1)
    pytest.fail("workers not ready: " + " | ".join((tmp / f"{w.name}.log").read_text()[-1500:] for w in workers))


@pytest.fixture(scope="module")
def reference(cluster, pg_databases):  # noqa: F811
    """The same day on local disks (`airflow dags test`, its own metadata DB, Redis db 1, MariaDB db)."""
    c = cluster
    tmp = c["tmp"] / "local"
    env = _home_env(os.environ, tmp / "home", tmp, 0, c["mysql"][1], pg_databases())
    env.pop("VIDEO_ASSET_DATA_ROOT", None)
    env.update({"AIRFLOW_CONN_VIDEO_REDIS": f"redis://127.0.0.1:{c['rport']}/1", "VIDEO_DEADLINE": "off",
                "VIDEO_RETRY_DELAY_SECONDS": "1"})
    _run([BIN / "airflow", "db", "migrate"], env, timeout=400)
    _run([BIN / "video-analytics", "sample-data", "--date", DAY, "--log-dir", env["AIRFLOW_VAR_LOG_DIR"], *SAMPLE], env)
    res = dags_test(env, DAY, {"shards": SHARDS})
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return {"online": _online(DataRoot(env["AIRFLOW_VAR_DATA_ROOT"])), "docs": _export(env, tmp / "export")}


def _shards(api, run):
    return [t for t in _task_instances(api, run) if t["task_id"] == SHARD_TASK]


@pytest.fixture(scope="module")
def day_run(cluster):
    c = cluster
    _sample_and_upload(c["env"], c["tmp"] / "sample-logs")
    Path(c["env"]["VIDEO_TEST_SHARD_DELAY_FILE"]).write_text("2")  # both hosts get shards
    try:
        run = _trigger(c["api"], DAY, {"shards": SHARDS})
        assert _wait_runs(c["api"], [run], timeout=600) == {run: "success"}
    finally:
        Path(c["env"]["VIDEO_TEST_SHARD_DELAY_FILE"]).write_text("0")
    return run


def test_a_day_on_two_hosts_equals_the_local_day(cluster, day_run, reference):
    c, root = cluster, DataRoot(cluster["env"]["AIRFLOW_VAR_DATA_ROOT"])
    hosts = {t["hostname"] for t in _shards(c["api"], day_run)}
    assert hosts == {w.name for w in c["workers"]}, hosts
    assert _online(root).equals(reference["online"])
    assert _export(c["env"], c["tmp"] / "export") == reference["docs"]
    assert root.read_json("reports", f"{DAY}.json")["ok"] is True
    for w in c["workers"]:  # nothing but Airflow's own files and local task-log copies on the worker hosts
        home = c["tmp"] / w.name
        stray = [p for p in home.rglob("*") if p.is_file() and not p.is_relative_to(home / "task-logs-local")
                 and not p.is_relative_to(home / "airflow")]
        assert stray == [], stray
    local = [p for p in c["tmp"].glob("**/online_time") if not p.is_relative_to(c["tmp"] / "local")]
    assert local == [], "a local data root was written"  # (tmp/local is the reference run's)


def test_the_ui_shows_each_tasks_log_from_the_object_store(cluster, day_run):
    c = cluster
    keys = c["s3"].keys(BUCKET)
    for t in _task_instances(c["api"], day_run):
        if t["state"] != "success":
            continue
        path = (f"/api/v2/dags/{DAG_ID}/dagRuns/{day_run}/taskInstances/{t['task_id']}/logs/{t['try_number']}"
                f"?map_index={t['map_index']}")
        body = json.dumps(c["api"].get(path))
        assert f"s3://{BUCKET}/task-logs/" in body, (t["task_id"], body[:1500])
        assert any(k.startswith("task-logs/") and f"task_id={t['task_id']}/" in k for k in keys), t["task_id"]


def test_the_dashboard_shows_the_day(cluster, day_run):
    c = cluster
    req = urllib.request.Request(f"{c['api'].base}/video-dashboard/",
                                 headers={"Authorization": f"Bearer {c['api'].token}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        page = r.read().decode()
    users = _online(DataRoot(c["env"]["AIRFLOW_VAR_DATA_ROOT"])).num_rows
    assert DAY in page and f"{users:,}" in page


def test_killing_a_worker_host_mid_shard_still_succeeds_identically(cluster, day_run, reference):
    c = cluster
    api, run = c["api"], day_run
    DataRoot(c["env"]["AIRFLOW_VAR_DATA_ROOT"]).remove("online_time", DAY)  # the shards are recomputed (from the kept day summaries)
    Path(c["env"]["VIDEO_TEST_SHARD_DELAY_FILE"]).write_text("15")
    hosts = {w.name: w for w in c["workers"]}
    try:
        api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns/{run}/clear", {"dry_run": False})
        victim, end = None, time.monotonic() + 300
        while victim is None:
            assert time.monotonic() < end, f"no {SHARD_TASK} seen running: {_shards(api, run)}"
            running = [t for t in _shards(api, run) if t["state"] == "running" and t["hostname"] in hosts]
            victim = running[0]["hostname"] if running else None
            time.sleep(0.3)
        killed = hosts[victim].kill_all()
    finally:
        Path(c["env"]["VIDEO_TEST_SHARD_DELAY_FILE"]).write_text("0")
    assert killed and hosts[victim].pids() == []
    lost = {t["map_index"] for t in _shards(api, run) if t["state"] == "running" and t["hostname"] == victim}
    assert lost
    assert _wait_runs(api, [run], timeout=600) == {run: "success"}
    shards = {t["map_index"]: t for t in _shards(api, run)}
    survivor = next(h for h in hosts if h != victim)
    for i in lost:
        assert shards[i]["try_number"] >= 2 and shards[i]["hostname"] == survivor, shards[i]
    assert _online(DataRoot(c["env"]["AIRFLOW_VAR_DATA_ROOT"])).equals(reference["online"])
    assert _export(c["env"], c["tmp"] / "export_after_kill") == reference["docs"]
    assert not [k for k in c["s3"].keys(BUCKET) if k.endswith(".tmp")]
