"""The real local stack (scripts/airflow_stack.sh): UI, plugin auth, failure alerts, backfills and
two Celery workers (work spread over both; a worker killed mid-task) for daily_analytics.

One stack per module, on free ports, with its own AIRFLOW_HOME, PostgreSQL metadata database
(``airflow_test_<random>``, dropped at teardown), data root, log folder, Redis database, MariaDB
database, Celery queue and worker names (broker: Redis db BROKER_REDIS_DB), all passed to `up`
through the environment. Teardown always runs `down`, which stops exactly the recorded process
groups.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.support import chromium
from tests.support.servers import free_port

pytestmark = pytest.mark.airflow_stack

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STACK = ROOT / "scripts" / "airflow_stack.sh"
STACK_HOOKS = ROOT / "tests" / "support" / "stack_hooks"  # test-only airflow_local_settings
ARTIFACTS = ROOT / "test-artifacts"
DAG_ID = "daily_analytics"
# Redis databases: the stack's data, the `dags test` reference's data, the Celery broker (shared
# with `make up`; this module uses its own queue and worker names there and removes its keys)
STACK_REDIS_DB = int(os.environ.get("VIDEO_TEST_STACK_REDIS_DB", "13"))
REF_REDIS_DB = int(os.environ.get("VIDEO_TEST_REF_REDIS_DB", "14"))
BROKER_REDIS_DB = int(os.environ.get("VIDEO_TEST_BROKER_REDIS_DB", "15"))
PG_PORT = int(os.environ.get("VIDEO_PG_PORT", "5432"))
SAMPLE = ["--users", "60", "--plays", "150"]
TERMINAL = {"success", "failed"}


def _run(cmd, env, timeout=600, check=True) -> subprocess.CompletedProcess:
    res = subprocess.run([str(c) for c in cmd], env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout)
    if check and res.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {res.returncode}\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}")
    return res


class Api:
    """Minimal REST API v2 client with a JWT from the simple auth manager (POST /auth/token)."""

    def __init__(self, base: str):
        self.base = base
        self.token = self._token()

    def _token(self) -> str:
        req = urllib.request.Request(f"{self.base}/auth/token", method="POST",
                                     data=json.dumps({"username": "admin", "password": "admin"}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=15) as r:
            return json.load(r)["access_token"]

    def call(self, method: str, path: str, body=None):
        req = urllib.request.Request(f"{self.base}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {self.token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    def get(self, path: str):
        return self.call("GET", path)

    def status(self, path: str, headers: dict | None = None) -> int:
        """The HTTP status of a GET (no token unless given in ``headers``)."""
        req = urllib.request.Request(f"{self.base}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code


@dataclass
class Stack:
    env: dict
    api: Api
    tmp: Path
    maildir: str = ""  # the alert e-mails the stack sent (its own aiosmtpd, `smtp_default`)

    @property
    def data_root(self) -> Path:
        return Path(self.env["AIRFLOW_VAR_DATA_ROOT"])

    @property
    def log_dir(self) -> Path:
        return Path(self.env["AIRFLOW_VAR_LOG_DIR"])


def _redis(db: int):
    import redis

    client = redis.Redis(host="127.0.0.1", port=int(os.environ.get("VIDEO_REDIS_PORT", "6379")), db=db)
    try:
        client.ping()
    except Exception as exc:
        pytest.fail(f"Redis is not answering on 127.0.0.1 ({exc}); run `scripts/services.sh start`")
    return client


def _mysql_conn():
    import MySQLdb

    try:
        return MySQLdb.connect(host="127.0.0.1", port=int(os.environ.get("VIDEO_MYSQL_PORT", "3306")),
                               user="video", passwd="video")
    except Exception as exc:
        pytest.fail(f"MariaDB is not answering on 127.0.0.1 ({exc}); run `scripts/services.sh start`")


def _pg_admin():
    import psycopg2

    try:
        conn = psycopg2.connect(host="127.0.0.1", port=PG_PORT, user="airflow", password="airflow", dbname="postgres")
    except Exception as exc:
        pytest.fail(f"PostgreSQL is not answering on 127.0.0.1:{PG_PORT} ({exc}); run `scripts/services.sh start`")
    conn.autocommit = True
    return conn


@pytest.fixture(scope="module")
def pg_databases():
    """Makes fresh metadata databases ``airflow_test_<random>``; drops them all at teardown."""
    conn, names = _pg_admin(), []

    def make() -> str:
        name = f"airflow_test_{uuid.uuid4().hex[:10]}"
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        names.append(name)
        return name

    yield make
    with conn.cursor() as cur:
        for name in names:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


def _server_ports(host: str, port: int) -> dict:
    """The api-server on ``host:port`` (and the execution API the workers call), free ports for the
    other components' servers."""
    return {
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://{host}:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{host}:{port}/execution/",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
    }


def _home_env(base: dict, home: Path, data: Path, redis_db: int, mysql_db: str, pg_db: str) -> dict:
    env = dict(base)
    sql_conn = f"postgresql+psycopg2://airflow:airflow@127.0.0.1:{PG_PORT}/{pg_db}"
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_conn,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{sql_conn}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW_VAR_DATA_ROOT": str(data / "root"),
        "AIRFLOW_VAR_LOG_DIR": str(data / "logs"),
        "AIRFLOW_CONN_VIDEO_REDIS": f"redis://127.0.0.1:6379/{redis_db}",
        "AIRFLOW_CONN_VIDEO_MYSQL": f"mysql://video:video@127.0.0.1:3306/{mysql_db}",
        "VIDEO_RETRY_DELAY_SECONDS": "8",
        "VIDEO_SENSOR_POKE_SECONDS": "2",
        "VIDEO_SENSOR_TIMEOUT_SECONDS": "300",
    })
    env.pop("AIRFLOW_CONN_VIDEO_MONGO", None)
    return env


@pytest.fixture(scope="module")
def mysql_scratch():
    name = f"test_{uuid.uuid4().hex[:10]}"
    conn = _mysql_conn()
    conn.cursor().execute(f"CREATE DATABASE `{name}`")
    conn.commit()
    yield name
    conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def _drop_broker_keys(queue: str) -> None:
    """Remove this module's Celery queue from the shared broker database (and its unacked messages)."""
    broker = _redis(BROKER_REDIS_DB)
    for key in list(broker.scan_iter(match=f"*{queue}*")):
        broker.delete(key)
    for tag, raw in broker.hgetall("unacked").items():
        if queue.encode() in raw:
            broker.hdel("unacked", tag)
            broker.zrem("unacked_index", tag)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, mysql_scratch, pg_databases):
    from contextlib import ExitStack

    from tests.support.servers import smtp_server

    tmp = tmp_path_factory.mktemp("airflow_stack")
    servers = ExitStack()
    smtp_port, _, maildir = servers.enter_context(smtp_server(tmp))
    port = free_port()
    tag = uuid.uuid4().hex[:6]
    queue = f"test_stack_{tag}"
    try:
        env = _home_env(os.environ, tmp / "home", tmp / "data", STACK_REDIS_DB, mysql_scratch, pg_databases())
        env.update({
            # Celery: two workers with 2 slots each, their own queue and names on the shared broker db
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{os.environ.get('VIDEO_REDIS_PORT', '6379')}/{BROKER_REDIS_DB}",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
            "AIRFLOW_STACK_WORKER_PREFIX": f"t{tag}-worker",
            "WORKERS": "2",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__CORE__PARALLELISM": "4",
            # a killed worker's task: lost heartbeats fail the try after 20 s, then it is retried
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
            # a message the killed worker had taken but not started: back to the scheduler after 90 s
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
            # test-only hook (tests/support/stack_hooks/airflow_local_settings.py, on this stack's PYTHONPATH):
            # compute_shard sleeps while this file holds a number of seconds
            "VIDEO_TEST_SHARD_DELAY_FILE": str(tmp / "shard_delay"),
            "PYTHONPATH": os.pathsep.join(p for p in (str(STACK_HOOKS), os.environ.get("PYTHONPATH")) if p),
            **_server_ports("127.0.0.1", port),
            "AIRFLOW_STACK_TIMEOUT": "180",
            # alert e-mails to the test's own SMTP server (started and stopped by pid)
            "AIRFLOW_CONN_SMTP_DEFAULT": f"smtp://127.0.0.1:{smtp_port}?disable_tls=true&disable_ssl=true"
                                         "&from_email=airflow%40example.com",
            "AIRFLOW_VAR_ALERT_EMAILS": "ops@example.com",
            # OpenLineage events of this stack's tasks (file transport, scripts/env.sh), in its own file
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "append": True,
                                                           "log_file_path": str(tmp / "openlineage" / "events.jsonl")}),
        })
        (tmp / "openlineage").mkdir()
        env.pop("VIDEO_ASSET_DATA_ROOT", None)  # its own metadata DB: the Assets name this stack's data root
        rds = _redis(STACK_REDIS_DB)
        rds.flushdb()
        _run([STACK, "init"], env, timeout=300)
        _run([BIN / "airflow", "pools", "set", "video_publish", "1", "MongoDB publishing"], env, timeout=120)
        try:
            _run([STACK, "up"], env, timeout=300)
            api = Api(env["AIRFLOW__API__BASE_URL"])
            _wait_for_dag(api)
            yield Stack(env=env, api=api, tmp=tmp, maildir=maildir)
        finally:
            down = _run([STACK, "down"], env, timeout=180, check=False)
            sys.stderr.write(down.stderr[-2000:])
            rds.flushdb()
            _drop_broker_keys(queue)
            assert down.returncode == 0, f"airflow_stack.sh down failed:\n{down.stderr[-3000:]}"
    finally:
        servers.close()


def _wait_for_dag(api: Api, timeout: float = 180) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            return api.get(f"/api/v2/dags/{DAG_ID}")
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
        errors = api.get("/api/v2/importErrors").get("import_errors", [])
        if any("daily_analytics" in e.get("filename", "") for e in errors):
            pytest.fail(f"{DAG_ID} does not import: {errors}")
        time.sleep(2)
    pytest.fail(f"{DAG_ID} not parsed within {timeout}s")


def _sample(env: dict, day: str) -> None:
    _run([BIN / "video-analytics", "sample-data", "--date", day, "--log-dir", env["AIRFLOW_VAR_LOG_DIR"], *SAMPLE],
         env, timeout=300)


def _trigger(api: Api, day: str, conf: dict | None = None, logical_date: str | None = None) -> str:
    run = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns",
                   {"dag_run_id": f"test__{day}__{uuid.uuid4().hex[:6]}",
                    "logical_date": f"{logical_date or day}T00:00:00Z", "conf": conf or {}})
    return run["dag_run_id"]


def _run_state(api: Api, run_id: str) -> str:
    return api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"]


def _wait_runs(api: Api, run_ids: list[str], timeout: float = 600) -> dict[str, str]:
    end = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < end:
        states = {r: _run_state(api, r) for r in run_ids}
        if all(s in TERMINAL for s in states.values()):
            return states
        time.sleep(3)
    pytest.fail(f"runs not finished within {timeout}s: {states}")


def _task_instances(api: Api, run_id: str) -> list[dict]:
    return api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=1000")["task_instances"]


def _alerts(stack: Stack, run_id: str) -> list[Path]:
    """The run's alert files (task alerts and any deadline.json)."""
    return sorted((stack.data_root / "alerts" / DAG_ID / run_id).glob("*.json"))


# ---- a) UI ----------------------------------------------------------------------------------


def _chromium_page(base: str, token: str, path: str, expect: list[str], shot: Path, profile: Path,
                   timeout: float = 60) -> str:
    """Load ``path`` in headless Chromium with the ``_token`` cookie; return the page text once
    every string in ``expect`` shows (or at the timeout), saving a screenshot (``tests.support.chromium``)."""
    try:
        return chromium.page(base, token, path, expect, shot, profile, timeout)
    except chromium.ChromiumError as exc:
        pytest.fail(str(exc))


def test_ui_shows_the_dag_and_its_tasks(stack, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    tasks = [t["task_id"] for t in stack.api.get(f"/api/v2/dags/{DAG_ID}/tasks")["tasks"]]
    assert "verify" in tasks and len(tasks) >= 8, tasks
    overview = _chromium_page(stack.api.base, stack.api.token, f"/dags/{DAG_ID}", [DAG_ID, "Tasks"],
                              ARTIFACTS / "ui-dag-overview.png", tmp_path / "profile1")
    assert DAG_ID in overview and "Sign in" not in overview
    listing = _chromium_page(stack.api.base, stack.api.token, f"/dags/{DAG_ID}/tasks", tasks,
                             ARTIFACTS / "ui-dag-tasks.png", tmp_path / "profile2")
    missing = [t for t in tasks if t not in listing]
    assert not missing, f"task ids not shown on the Tasks page: {missing}"
    assert (ARTIFACTS / "ui-dag-tasks.png").stat().st_size > 10_000


def test_ui_without_token_is_not_logged_in(stack, tmp_path):
    """Guards the UI test above: without the cookie the API refuses the UI's calls."""
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"{stack.api.base}/api/v2/dags/{DAG_ID}", timeout=10)
    assert exc.value.code in (401, 403)


def test_reports_plugin_requires_airflow_auth(stack):
    """The verification-reports plugin app (plugins/verify_reports_plugin.py) is behind Airflow's auth."""
    for path in ("/video-reports/", "/video-reports/2014-03-01"):
        assert stack.api.status(path) in (401, 403), path
        assert stack.api.status(path, {"Authorization": "Bearer not-a-jwt"}) in (401, 403), path
        assert stack.api.status(path, {"Cookie": "_token=not-a-jwt"}) in (401, 403), path
    # the JWT from /auth/token, as a Bearer header (API clients) or the `_token` cookie (the UI)
    assert stack.api.status("/video-reports/", {"Authorization": f"Bearer {stack.api.token}"}) == 200
    assert stack.api.status("/video-reports/", {"Cookie": f"_token={stack.api.token}"}) == 200


DASHBOARD = "/video-dashboard"
DASHBOARD_ROUTES = [f"{DASHBOARD}/", f"{DASHBOARD}/day/2014-03-03", f"{DASHBOARD}/run/{DAG_ID}/some_run"]


def test_dashboard_requires_airflow_auth(stack):
    """The dashboard (plugins/video_dashboard_plugin.py) answers only with Airflow's authentication."""
    for path in DASHBOARD_ROUTES:
        assert stack.api.status(path) == 401, path
        assert stack.api.status(path, {"Authorization": "Bearer not-a-jwt"}) in (401, 403), path
        assert stack.api.status(path, {"Cookie": "_token=not-a-jwt"}) in (401, 403), path
    assert stack.api.status(f"{DASHBOARD}/", {"Authorization": f"Bearer {stack.api.token}"}) == 200


# Runs before any DAG run of this module (file order): the data root is still empty.
def test_dashboard_empty_state_explains_what_to_do(stack, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    assert not list(stack.data_root.glob("reports/*.json")), "a run already wrote results"
    page = _chromium_page(stack.api.base, stack.api.token, f"{DASHBOARD}/", ["No results yet"],
                          ARTIFACTS / "dashboard-empty.png", tmp_path / "profile")
    assert "No results yet" in page and "Trigger" in page and "make demo" in page
    assert "Sign in" not in page
    # the nav entry: the Airflow UI shows the dashboard in an iframe
    ui = _chromium_page(stack.api.base, stack.api.token, "/plugin/video_dashboard", ["Video dashboard"],
                        ARTIFACTS / "dashboard-empty-in-ui.png", tmp_path / "profile2")
    assert f"{DASHBOARD}/" in ui


# ---- b) alerts ------------------------------------------------------------------------------


BACKFILL_DAYS = ["2014-03-01", "2014-03-02", "2014-03-03"]


def _backfill_runs(api: Api) -> dict[str, dict]:
    runs = api.get(f"/api/v2/dags/{DAG_ID}/dagRuns?run_type=backfill&limit=100")["dag_runs"]
    return {r["logical_date"][:10]: r for r in runs if r["logical_date"][:10] in BACKFILL_DAYS}


def _latest_backfill(api: Api) -> dict:
    backfills = api.get(f"/api/v2/backfills?dag_id={DAG_ID}&limit=100")["backfills"]
    assert backfills, "no backfill registered"
    return max(backfills, key=lambda b: b["id"])


def _backfill_and_wait(stack: Stack, reprocess: str, previous_id: int | None, timeout: float = 900) -> dict:
    _run([BIN / "airflow", "backfill", "create", "--dag-id", DAG_ID, "--from-date", BACKFILL_DAYS[0],
          "--to-date", BACKFILL_DAYS[-1], "--max-active-runs", "1", "--reprocess-behavior", reprocess],
         stack.env, timeout=180)
    bf = _latest_backfill(stack.api)
    assert bf["id"] != previous_id, "the backfill was not created"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        bf = stack.api.get(f"/api/v2/backfills/{bf['id']}")
        runs = _backfill_runs(stack.api)
        if bf["completed_at"] and len(runs) == 3 and all(r["state"] in TERMINAL for r in runs.values()):
            break
        time.sleep(3)
    else:
        pytest.fail(f"backfill {bf} not complete within {timeout}s: {_backfill_runs(stack.api)}")
    states = {d: r["state"] for d, r in _backfill_runs(stack.api).items()}
    assert states == dict.fromkeys(BACKFILL_DAYS, "success"), states
    return bf


def _online(root: Path, day: str):
    return pq.read_table(root / "online_time" / day / "online_time.parquet").sort_by("userid")


def _export(env: dict, root: Path, out: Path) -> dict[str, list[str]]:
    _run([BIN / "video-analytics", "export-docs", "--data-root", root, "--out", out], env, timeout=300)
    return {p.name: sorted(p.read_text().splitlines()) for p in sorted(out.glob("*.jsonl"))}


def test_backfill_matches_dags_test_and_reprocessing_changes_nothing(stack, mysql_scratch, pg_databases):
    for day in BACKFILL_DAYS:
        _sample(stack.env, day)
    first = _backfill_and_wait(stack, "none", None)

    # the same days with `airflow dags test`, from identical inputs, into another data root
    ref = _home_env(os.environ, stack.tmp / "ref_home", stack.tmp / "ref_data", REF_REDIS_DB, mysql_scratch,
                    pg_databases())
    ref["VIDEO_DEADLINE"] = "off"  # `airflow dags test` cannot run a DAG with a deadline (README)
    ref_redis = _redis(REF_REDIS_DB)
    ref_redis.flushdb()
    try:
        _run([STACK, "init"], ref, timeout=300)
        _run([BIN / "airflow", "pools", "set", "video_publish", "1", "MongoDB publishing"], ref, timeout=120)
        for day in BACKFILL_DAYS:
            _sample(ref, day)
        ref_logs = Path(ref["AIRFLOW_VAR_LOG_DIR"])
        for log in sorted(ref_logs.glob("2014-0[23]-*.log")):
            if log.name[:10] >= "2014-02-21":  # the backfill window's inputs are identical
                assert log.read_bytes() == (stack.log_dir / log.name).read_bytes(), log.name
        for day in BACKFILL_DAYS:
            _run([BIN / "airflow", "dags", "test", DAG_ID, day], ref, timeout=900)
    finally:
        ref_redis.flushdb()
    ref_root = Path(ref["AIRFLOW_VAR_DATA_ROOT"])

    for day in BACKFILL_DAYS:
        assert _online(stack.data_root, day).equals(_online(ref_root, day)), day
    docs = _export(stack.env, stack.data_root, stack.tmp / "export1")
    assert docs, "nothing exported"
    assert docs == _export(ref, ref_root, stack.tmp / "export_ref")

    online_before = {d: _online(stack.data_root, d) for d in BACKFILL_DAYS}
    _backfill_and_wait(stack, "completed", first["id"])
    for day in BACKFILL_DAYS:
        assert _online(stack.data_root, day).equals(online_before[day]), day
    assert _export(stack.env, stack.data_root, stack.tmp / "export2") == docs


def _cells(html: str, row_attr: str) -> dict[str, str]:
    """``{td class: text}`` of the table row with ``row_attr`` in the page's HTML."""
    import re

    row = re.search(rf"<tr {row_attr}>(.*?)</tr>", html, re.S)
    assert row, f"no row {row_attr}"
    return {m.group(1).split()[0]: re.sub(r"<[^>]+>", "", m.group(2))
            for m in re.finditer(r"<td class=\"([^\"]+)\">(.*?)</td>", row.group(1), re.S)}


# Right after the backfill (the three days it processed are the data root's only results).
def test_dashboard_shows_the_data_roots_numbers(stack, tmp_path):
    """Every dashboard page in headless Chromium, its numbers checked against the data root's files."""
    import re

    ARTIFACTS.mkdir(exist_ok=True)
    root = stack.data_root
    page = _chromium_page(stack.api.base, stack.api.token, f"{DASHBOARD}/", BACKFILL_DAYS,
                          ARTIFACTS / "dashboard-overview.png", tmp_path / "p1")
    for day in BACKFILL_DAYS:
        online = pq.read_table(root / "online_time" / day / "online_time.parquet")
        contrib = pq.read_table(root / "plays" / day.replace("-", "") / "contrib" / "vid.parquet")
        rows_in = json.loads((root / "online_time" / day / "totals.json").read_text())["rows_in"]
        rejects = pq.read_metadata(root / "online_time" / day / "rejects.parquet").num_rows
        cells = _cells(page, f"data-day=\"{day}\"")
        assert cells["users"] == f"{online.num_rows:,}", (day, cells)
        assert cells["online"] == f"{sum(online.column('online_seconds').to_pylist()):,}", (day, cells)
        assert cells["plays"] == f"{sum(contrib.column('ClickNum').to_pylist()):,}", (day, cells)
        assert cells["reject-rate"] == f"{100 * rejects / rows_in:.2f}%", (day, cells)
        assert cells["verify"] == "passed", (day, cells)
    assert page.count('class="threshold"') == 2

    day = BACKFILL_DAYS[-1]
    d = day.replace("-", "")
    html = _chromium_page(stack.api.base, stack.api.token, f"{DASHBOARD}/day/{day}", ["Top videos by plays", "Heat map"],
                          ARTIFACTS / "dashboard-day.png", tmp_path / "p2")
    contrib = pq.read_table(root / "plays" / d / "contrib" / "vid.parquet").to_pylist()
    top = sorted(contrib, key=lambda r: (-r["ClickNum"], r["vid"]))[:10]
    shown = re.findall(r'<tr data-vid="([^"]+)">', html)
    assert shown == [r["vid"] for r in top]
    assert _cells(html, f'data-vid="{top[0]["vid"]}"')["clicknum"] == f"{top[0]['ClickNum']:,}"
    by_traffic = sorted(contrib, key=lambda r: (-r["Traffic"], r["vid"]))[:10]
    bars = re.findall(r'class="bar" data-vid="([^"]+)"', html)
    assert bars == [r["vid"] for r in top] + [r["vid"] for r in by_traffic]
    users = pq.read_metadata(root / "online_time" / day / "online_time.parquet").num_rows
    hist = re.findall(r'class="bar" data-lo="[^"]*" data-hi="[^"]*" data-value="(\d+)"', html)
    assert sum(map(int, hist)) == users
    segs = pq.read_table(root / "plays" / d / "segments.parquet").to_pylist()
    first = min((r for r in segs if r["vid"] == top[0]["vid"]), key=lambda r: r["seg"])
    run = re.search(r'class="run" data-start="(\d+)" data-end="\d+" data-value="(\d+)"', html)
    assert (int(run.group(1)), int(run.group(2))) == (2 * first["seg"] - 2, first["heat"])

    # the per-run view: a tab on the run's page, with the day that run processed
    run_id = urllib.parse.quote(_backfill_runs(stack.api)[day]["dag_run_id"], safe="")
    tab = _chromium_page(stack.api.base, stack.api.token, f"/dags/{DAG_ID}/runs/{run_id}/plugin/video_day_results",
                         ["Day results"], ARTIFACTS / "dashboard-run-tab.png", tmp_path / "p3")
    assert f"{DASHBOARD}/run/{DAG_ID}/" in tab
    direct = _chromium_page(stack.api.base, stack.api.token, f"{DASHBOARD}/run/{DAG_ID}/{run_id}",
                            [f"Day {day}"], ARTIFACTS / "dashboard-run.png", tmp_path / "p4")
    assert re.findall(r'<tr data-vid="([^"]+)">', direct) == shown
    ui = _chromium_page(stack.api.base, stack.api.token, "/plugin/video_dashboard", ["Video dashboard"],
                        ARTIFACTS / "dashboard-in-ui.png", tmp_path / "p5")
    assert f"{DASHBOARD}/" in ui


def test_screenshots_script_saves_readmes_pngs(stack, tmp_path):
    """``scripts/screenshots.py`` against the running stack: README's two PNGs of a backfilled day, and a
    day without results refused in one line."""
    script = [sys.executable, ROOT / "scripts" / "screenshots.py", "--base-url", stack.api.base, "--out", tmp_path]
    _run([*script, "--day", BACKFILL_DAYS[-1]], stack.env, timeout=300)
    for name in ("dashboard.png", "dashboard-day.png"):
        png = (tmp_path / name).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000, name
    refused = _run([*script, "--day", "1999-01-01"], stack.env, timeout=120, check=False)
    assert refused.returncode == 1 and "no results for 1999-01-01" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_verified_days_update_the_assets_with_their_numbers(stack):
    """Each backfilled day's producing tasks updated their Assets, with the day's numbers as metadata;
    the Assets page lists them."""
    events = stack.api.get("/api/v2/assets/events?limit=1000")["asset_events"]
    names = {a["name"]: a for a in stack.api.get("/api/v2/assets?limit=100")["assets"]}
    assert {"video_online_time", "video_play_documents", "video_daily_verified"} <= set(names)
    verified = [e for e in events if e["asset_id"] == names["video_daily_verified"]["id"]]
    days = {e["extra"]["day"] for e in verified}
    assert set(BACKFILL_DAYS) <= days
    day = BACKFILL_DAYS[0]
    ev = next(e for e in verified if e["extra"]["day"] == day)
    online = pq.read_table(stack.data_root / "online_time" / day / "online_time.parquet")
    assert ev["extra"]["verify"] == "passed" and ev["extra"]["users"] == online.num_rows
    ot = [e for e in events if e["asset_id"] == names["video_online_time"]["id"] and e["extra"].get("day") == day]
    assert ot and ot[0]["extra"]["online_seconds"] == sum(online.column("online_seconds").to_pylist())


def test_openlineage_events_name_each_tasks_outputs(stack):
    """The OpenLineage provider (file transport) recorded each producing task's Asset as its output."""
    path = stack.tmp / "openlineage" / "events.jsonl"
    assert path.exists(), "no OpenLineage events written"
    outputs: dict[str, set[tuple[str, str]]] = {}
    for line in path.read_text().splitlines():
        ev = json.loads(line)
        if ev.get("eventType") == "COMPLETE":
            outputs.setdefault(ev["job"]["name"], set()).update(
                (o["namespace"], o["name"]) for o in ev.get("outputs", []))
    root = str(stack.data_root)
    assert ("file", f"{root}/online_time") in outputs.get(f"{DAG_ID}.online_time.merge_report", set()), outputs
    assert ("file", f"{root}/plays") in outputs.get(f"{DAG_ID}.plays.rollup_videos", set()), outputs
    assert ("file", f"{root}/reports") in outputs.get(f"{DAG_ID}.verify", set()), outputs


# Runs after the backfill test on purpose: its plays would otherwise be in the backfill's data
# root and play-id counters, and the comparison with in-order `dags test` runs must start clean.
def _garbage(log: Path, lines: int) -> bytes:
    original = log.read_bytes()
    log.write_bytes(original + b"".join(b"not a log line %d\n" % i for i in range(lines)))
    return original


def test_one_alert_per_exhausted_task_and_none_after_a_successful_retry(stack):
    """A deterministic failure fails at once (no retries) with one alert; a transient one is retried."""
    failing_day, retry_day = "2014-02-10", "2014-02-20"
    _sample(stack.env, failing_day)
    _sample(stack.env, retry_day)
    # the failing day: a few malformed lines and a zero reject threshold -> a deterministic failure
    _garbage(stack.log_dir / f"{failing_day}.log", 3)
    # the retried day: another run holds the day's plays lease on the first try only (transient)
    lease = _redis(STACK_REDIS_DB)
    lease_key = f"video_lease_{retry_day.replace('-', '')}"
    lease.set(lease_key, "another-host:1:ingest_plays:test", ex=600)

    failing = _trigger(stack.api, failing_day, {"max_reject_rate": 0.0})
    retried = _trigger(stack.api, retry_day)

    busy_task = "plays.ingest_plays"
    end, restored = time.monotonic() + 300, False
    try:
        while time.monotonic() < end and not restored:
            ti = next((t for t in _task_instances(stack.api, retried) if t["task_id"] == busy_task), None)
            if ti and ti["state"] == "up_for_retry":
                lease.delete(lease_key)
                restored = True
            elif ti and ti["state"] in ("success", "failed"):
                pytest.fail(f"{busy_task} ended {ti['state']} on try {ti['try_number']} before a retry was seen")
            time.sleep(0.5)
    finally:
        lease.delete(lease_key)
    assert restored, f"{busy_task} of {retried} never went up_for_retry"
    task = "online_time.sort_and_partition"

    states = _wait_runs(stack.api, [failing, retried], timeout=600)
    assert states == {failing: "failed", retried: "success"}, states

    # the failing run: one record per failed task instance, for its last try, and no other
    failed = {(t["task_id"], t["map_index"]): t for t in _task_instances(stack.api, failing)
              if t["state"] == "failed"}
    assert (task, -1) in failed, failed.keys()
    records = [json.loads(p.read_text()) for p in _alerts(stack, failing)]
    assert all(r["kind"] == "task_failed" for r in records), records  # no deadline alert for manual runs
    assert sorted((r["task_id"], r["map_index"]) for r in records) == sorted(failed)
    for r in records:
        ti = failed[(r["task_id"], r["map_index"])]
        assert r["dag_id"] == DAG_ID and r["run_id"] == failing
        # deterministic: failed on its first try although it had retries left
        assert r["try_number"] == ti["try_number"] == 1 and ti["max_tries"] >= 2, (r, ti)
        assert r["exception"] and r["timestamp"]
    rec = next(r for r in records if r["task_id"] == task)
    assert "reject" in rec["exception"].lower() and "AirflowFailException" in rec["exception"]
    assert stack.data_root.joinpath("alerts", DAG_ID, failing, f"{task}-try{rec['try_number']}.json").is_file()

    # the retried run: the task failed once (day busy), then succeeded -> no alert at all
    ti = next(t for t in _task_instances(stack.api, retried) if t["task_id"] == busy_task)
    assert ti["state"] == "success" and ti["try_number"] == 2, ti
    assert _alerts(stack, retried) == []


def _day_mails(stack: Stack, day: str, count: int, timeout: float = 180) -> list:
    """The alert e-mails about ``day``, once there are ``count`` of them (a task's failure callback runs
    after its state is reported, so a mail may follow the run's end by a moment)."""
    from tests.support.servers import mails

    end, got = time.monotonic() + timeout, []
    while time.monotonic() < end:
        got = [m for m in mails(stack.maildir) if f"] {day}: " in m["Subject"]]
        if len(got) >= count:
            return got
        time.sleep(1)
    pytest.fail(f"{len(got)} alert e-mail(s) about {day} within {timeout}s, not {count}: "
                f"{[m['Subject'] for m in got]}")


def _links(html: str) -> dict[str, str]:
    import html as html_mod
    import re

    return {k: html_mod.unescape(v) for k, v in
            re.findall(r"<th align='left'>(Run|Log)</th><td><a href=\"([^\"]+)\"", html)}


def _check_links(stack: Stack, html: str, run_id: str, ti: dict) -> None:
    """The mail's run link is the run's UI page; its log link names the task try whose log the API serves."""
    base = stack.env["AIRFLOW__API__BASE_URL"]
    links = _links(html)
    run_path = f"/dags/{DAG_ID}/runs/{urllib.parse.quote(run_id, safe='')}"
    assert links["Run"] == base + run_path, links
    log = urllib.parse.urlsplit(links["Log"])
    task_part = log.path.removeprefix(run_path + "/tasks/")
    assert log.path.startswith(run_path + "/tasks/") and task_part.split("/")[0] == ti["task_id"], links
    try_number = int(urllib.parse.parse_qs(log.query)["try_number"][0])
    assert try_number == ti["try_number"], (links, ti)
    auth = {"Authorization": f"Bearer {stack.api.token}"}
    assert stack.api.status(run_path, {"Cookie": f"_token={stack.api.token}"}) == 200
    logs = stack.api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/"
                         f"{ti['task_id']}/logs/{try_number}?full_content=true")
    assert logs["content"], logs
    assert stack.api.status(f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}", auth) == 200


def test_alert_mails_one_per_failed_task_not_per_retry_with_working_links(stack):
    """A run with a deterministic failure (rejects past a zero threshold: no retries) and a task that
    fails all its tries (its day's lease held elsewhere): one e-mail per failed task, through the
    stack's smtp_default to a real SMTP server, saying the day, the task and what failed, with links
    to the run and to the log of the try that failed; the alert records are written too."""
    from tests.support.servers import mail_html

    day = "2014-05-12"
    _sample(stack.env, day)
    _garbage(stack.log_dir / f"{day}.log", 3)
    lease = _redis(STACK_REDIS_DB)
    lease_key = f"video_lease_{day.replace('-', '')}"
    lease.set(lease_key, "another-host:1:ingest_plays:test", ex=900)
    try:
        run = _trigger(stack.api, day, {"max_reject_rate": 0.0})
        assert _wait_runs(stack.api, [run], timeout=600) == {run: "failed"}
    finally:
        lease.delete(lease_key)
    failed = {t["task_id"]: t for t in _task_instances(stack.api, run) if t["state"] == "failed"}
    assert set(failed) == {"online_time.sort_and_partition", "plays.ingest_plays"}, failed
    assert failed["plays.ingest_plays"]["try_number"] == 3  # retried twice, then failed
    mails = _day_mails(stack, day, 2)
    subjects = sorted(m["Subject"] for m in mails)
    assert subjects == [f"[{DAG_ID}] {day}: task online_time.sort_and_partition failed",
                        f"[{DAG_ID}] {day}: task plays.ingest_plays failed"], subjects
    for mail in mails:
        html = mail_html(mail)
        task = mail["Subject"].split("task ")[1].removesuffix(" failed")
        assert mail["To"] == "ops@example.com" and day in html and task in html
        _check_links(stack, html, run, failed[task])
    by_task = {m["Subject"].split("task ")[1].removesuffix(" failed"): mail_html(m) for m in mails}
    assert "RejectThresholdExceeded" in by_task["online_time.sort_and_partition"]
    assert "try 3" in by_task["plays.ingest_plays"] and lease_key in by_task["plays.ingest_plays"]
    records = sorted(p.name for p in _alerts(stack, run))
    assert records == ["online_time.sort_and_partition-try1.json", "plays.ingest_plays-try3.json"], records


def test_late_plays_are_mailed_and_a_rerun_picks_them_up(stack):
    """A play pushed to T_endlist_D after the ingest's snapshot is still there after cleanup: counted,
    written to alerts/<dag>/<run>/late_plays.json and mailed. Clearing the run processes the day again:
    the late play is in the day's plays and the list is empty; no second late-plays mail."""
    from tests.support.plays import put_play
    from tests.support.servers import mail_html

    day, ymd = "2014-05-20", "20140520"
    _sample(stack.env, day)
    _shard_delay(stack, 30)  # verify, then cleanup, wait for the online-time side: time to add a late play
    try:
        run = _trigger(stack.api, day)
        end = time.monotonic() + 300
        while True:
            ingest = next((t for t in _task_instances(stack.api, run) if t["task_id"] == "plays.ingest_plays"), None)
            if ingest and ingest["state"] == "success":
                break
            assert time.monotonic() < end and (ingest or {}).get("state") != "failed", ingest
            time.sleep(1)
        cleanup = next(t for t in _task_instances(stack.api, run) if t["task_id"] == "cleanup")
        assert cleanup["state"] in (None, "scheduled", "queued", "none"), cleanup  # not started yet
        put_play(_redis(STACK_REDIS_DB), ymd, "1000001_late")
    finally:
        _shard_delay(stack, 0)
    assert _wait_runs(stack.api, [run], timeout=600) == {run: "success"}
    done = json.loads((stack.data_root / "plays" / ymd / "cleanup.json").read_text())
    assert done["remaining"] == 1, done
    rec = json.loads((stack.data_root / "alerts" / DAG_ID / run / "late_plays.json").read_text())
    assert (rec["kind"], rec["count"], rec["sample"]) == ("late_plays", 1, ["1000001_late"])
    [mail] = _day_mails(stack, day, 1)
    assert mail["Subject"] == f"[{DAG_ID}] {day}: 1 late play(s) left in T_endlist_{ymd}"
    ti = next(t for t in _task_instances(stack.api, run) if t["task_id"] == "cleanup")
    _check_links(stack, mail_html(mail), run, ti)
    page = _html(stack.api, f"{DASHBOARD}/day/{day}")  # the dashboard shows them, and the run to re-run
    assert "id='late-plays'" in page and "1 late play(s)" in page
    assert f"/dags/{DAG_ID}/runs/{urllib.parse.quote(run, safe='')}'>its run</a>" in page

    stack.api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns/{run}/clear", {"dry_run": False})
    assert _wait_runs(stack.api, [run], timeout=600) == {run: "success"}
    done = json.loads((stack.data_root / "plays" / ymd / "cleanup.json").read_text())
    assert done["remaining"] == 0, done
    keys = pq.read_table(stack.data_root / "plays" / ymd / "plays.parquet", columns=["key"]).column("key")
    assert "1000001_late" in keys.to_pylist()
    assert _redis(STACK_REDIS_DB).llen(f"T_endlist_{ymd}") == 0
    assert len(_day_mails(stack, day, 1)) == 1
    assert "id='late-plays'" not in _html(stack.api, f"{DASHBOARD}/day/{day}")


def _html(api: Api, path: str) -> str:
    """A dashboard page as served (Bearer token), its HTML."""
    req = urllib.request.Request(f"{api.base}{path}", headers={"Authorization": f"Bearer {api.token}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read().decode()


# ---- c) backfill ----------------------------------------------------------------------------


# ---- d) Celery workers ----------------------------------------------------------------------

WORKER_DAY = "2014-04-10"
SHARD_TASK = "online_time.compute_shard"
SHARDS = 8


def _workers(stack: Stack) -> dict[str, str]:
    """The stack's Celery workers: --celery-hostname (= the task instances' hostname) -> component."""
    prefix = stack.env["AIRFLOW_STACK_WORKER_PREFIX"]
    return {f"{prefix}{i}@{socket.gethostname()}": f"{prefix}{i}" for i in range(1, int(stack.env["WORKERS"]) + 1)}


def _shard_delay(stack: Stack, seconds: float) -> None:
    """compute_shard sleeps this long first (the stack's airflow_local_settings reads the file at each call)."""
    Path(stack.env["VIDEO_TEST_SHARD_DELAY_FILE"]).write_text(str(seconds))


def _shards(api: Api, run_id: str) -> list[dict]:
    return [t for t in _task_instances(api, run_id) if t["task_id"] == SHARD_TASK]


def _kill_worker(stack: Stack, component: str) -> None:
    """SIGKILL one worker of this stack: its recorded process group, and every descendant."""
    import psutil

    pid = int((Path(stack.env["AIRFLOW_HOME"]) / "stack" / f"{component}.pid").read_text())
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert f"{component}@" in cmdline and os.getpgid(pid) == pid, (pid, cmdline)  # ours, a group leader
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    os.killpg(pid, signal.SIGKILL)
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    def alive(proc) -> bool:
        try:
            return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    end = time.monotonic() + 15
    while any(alive(p) for p in procs):
        assert time.monotonic() < end, "the killed worker's processes are still running"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def undisturbed(stack):
    """One day with 8 shards on the two workers, undisturbed: its run id, results and documents."""
    _sample(stack.env, WORKER_DAY)
    # 2 s per shard: a worker busy with its 2 slots cannot take the other shards
    _shard_delay(stack, 2)
    try:
        run = _trigger(stack.api, WORKER_DAY, {"shards": SHARDS})
        assert _wait_runs(stack.api, [run], timeout=300) == {run: "success"}
    finally:
        _shard_delay(stack, 0)
    return {"run": run, "online": _online(stack.data_root, WORKER_DAY),
            "docs": _export(stack.env, stack.data_root, stack.tmp / "export_undisturbed")}


def test_mapped_shards_run_on_both_workers(stack, undisturbed):
    workers = _workers(stack)
    assert len(workers) == 2
    shards = _shards(stack.api, undisturbed["run"])
    assert sorted(t["map_index"] for t in shards) == list(range(SHARDS))
    assert all(t["state"] == "success" and t["try_number"] == 1 for t in shards), shards
    # the kill test below needs the delay (tests/support/stack_hooks reads VIDEO_TEST_SHARD_DELAY_FILE)
    assert all(t["duration"] >= 1.9 for t in shards), (
        f"compute_shard was not slowed down by VIDEO_TEST_SHARD_DELAY_FILE: {[t['duration'] for t in shards]}")
    by_worker = {w: sorted(t["map_index"] for t in shards if t["hostname"] == w) for w in workers}
    assert all(by_worker.values()), f"not every worker ran a shard: {by_worker}"
    assert sum(map(len, by_worker.values())) == SHARDS, {t["map_index"]: t["hostname"] for t in shards}


def test_a_task_of_a_killed_worker_is_retried_on_the_other_one(stack, undisturbed):
    """SIGKILL a worker while it runs a compute_shard: the scheduler sees the task's heartbeats
    stop ([scheduler] task_instance_heartbeat_timeout), fails that try and the retry runs on the
    surviving worker; the day's results equal the undisturbed run's."""
    workers = _workers(stack)
    shutil.rmtree(stack.data_root / "online_time" / WORKER_DAY)  # everything is recomputed
    _shard_delay(stack, 15)
    try:
        # the same day again: a run processes its logical date only, so the run is cleared and re-runs
        run = undisturbed["run"]
        stack.api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns/{run}/clear", {"dry_run": False})
        victim, end = None, time.monotonic() + 240
        while victim is None:
            assert time.monotonic() < end, f"no {SHARD_TASK} seen running: {_shards(stack.api, run)}"
            running = [t for t in _shards(stack.api, run) if t["state"] == "running" and t["hostname"] in workers]
            victim = running[0]["hostname"] if running else None
            time.sleep(0.3)
        _kill_worker(stack, workers[victim])
        killed_at = time.monotonic()
    finally:
        _shard_delay(stack, 0)
    lost = {t["map_index"] for t in _shards(stack.api, run) if t["state"] == "running" and t["hostname"] == victim}
    assert lost, "the killed worker was running no shard"
    survivor = next(w for w in workers if w != victim)

    assert _wait_runs(stack.api, [run], timeout=400) == {run: "success"}
    recovered_in = time.monotonic() - killed_at
    shards = {t["map_index"]: t for t in _shards(stack.api, run)}
    assert all(t["state"] == "success" for t in shards.values()), shards
    for i in lost:
        assert shards[i]["try_number"] >= 2 and shards[i]["hostname"] == survivor, shards[i]
    sys.stderr.write(f"worker {victim} killed while running shards {sorted(lost)}; "
                     f"run succeeded {recovered_in:.0f}s later\n")

    # the same results as the undisturbed run of the same inputs
    assert _online(stack.data_root, WORKER_DAY).equals(undisturbed["online"])
    assert _export(stack.env, stack.data_root, stack.tmp / "export_after_kill") == undisturbed["docs"]
