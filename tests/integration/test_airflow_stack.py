"""The real local stack (scripts/airflow_stack.sh): UI, failure alerts and backfills of daily_analytics.

One stack per module, on free ports, with its own AIRFLOW_HOME (SQLite), data root, log folder,
Redis database and MariaDB database, all passed to `up` through the environment. Teardown
always runs `down`, which stops exactly the recorded process groups.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.airflow_stack

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STACK = ROOT / "scripts" / "airflow_stack.sh"
ARTIFACTS = ROOT / "test-artifacts"
DAG_ID = "daily_analytics"
STACK_REDIS_DB, REF_REDIS_DB = 10, 11
SAMPLE = ["--users", "60", "--plays", "150"]
TERMINAL = {"success", "failed"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


@dataclass
class Stack:
    env: dict
    api: Api
    tmp: Path

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


def _home_env(base: dict, home: Path, data: Path, redis_db: int, mysql_db: str) -> dict:
    env = dict(base)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
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


@pytest.fixture(scope="module")
def stack(tmp_path_factory, mysql_scratch):
    tmp = tmp_path_factory.mktemp("airflow_stack")
    port = _free_port()
    env = _home_env(os.environ, tmp / "home", tmp / "data", STACK_REDIS_DB, mysql_scratch)
    env.update({
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW_STACK_TIMEOUT": "180",
    })
    rds = _redis(STACK_REDIS_DB)
    rds.flushdb()
    _run([STACK, "init"], env, timeout=300)
    _run([BIN / "airflow", "pools", "set", "video_publish", "1", "MongoDB publishing"], env, timeout=120)
    try:
        _run([STACK, "up"], env, timeout=300)
        api = Api(env["AIRFLOW__API__BASE_URL"])
        _wait_for_dag(api)
        yield Stack(env=env, api=api, tmp=tmp)
    finally:
        down = _run([STACK, "down"], env, timeout=180, check=False)
        sys.stderr.write(down.stderr[-2000:])
        rds.flushdb()
        assert down.returncode == 0, f"airflow_stack.sh down failed:\n{down.stderr[-3000:]}"


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


def _trigger(api: Api, day: str, conf: dict | None = None) -> str:
    run = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns",
                   {"dag_run_id": f"test__{day}__{uuid.uuid4().hex[:6]}",
                    "logical_date": f"{day}T00:00:00Z", "conf": conf or {}})
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
    every string in ``expect`` shows (or at the timeout), saving a screenshot."""
    from websockets.sync.client import connect

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed (`scripts/services.sh install` installs it)")
    proc = subprocess.Popen(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--window-size=1400,900", "--remote-debugging-address=127.0.0.1",
         "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        end = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > end or proc.poll() is not None:
                pytest.fail("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=64 * 2**20, open_timeout=10) as ws:
            seq = iter(range(1, 10**6))

            def cdp(method: str, **params):
                msg_id = next(seq)
                ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
                while True:
                    msg = json.loads(ws.recv(timeout=30))
                    if msg.get("id") == msg_id:
                        assert "error" not in msg, msg
                        return msg.get("result", {})

            # the UI authenticates API calls with the `_token` cookie (COOKIE_NAME_JWT_TOKEN)
            cdp("Network.setCookie", name="_token", value=token, url=f"{base}/", httpOnly=True)
            cdp("Page.navigate", url=f"{base}{path}")
            text, end = "", time.monotonic() + timeout
            while time.monotonic() < end:
                text = cdp("Runtime.evaluate", expression="document.body ? document.body.innerText : ''",
                           returnByValue=True)["result"].get("value", "")
                if all(e in text for e in expect):
                    break
                time.sleep(1)
            time.sleep(1)
            shot.write_bytes(base64.b64decode(cdp("Page.captureScreenshot", format="png")["data"]))
            html = cdp("Runtime.evaluate", expression="document.documentElement.outerHTML",
                       returnByValue=True)["result"]["value"]
            return text + "\n" + html
    finally:
        try:
            os.killpg(proc.pid, 15)
        except ProcessLookupError:
            pass
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(5)


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


def test_backfill_matches_dags_test_and_reprocessing_changes_nothing(stack, mysql_scratch):
    for day in BACKFILL_DAYS:
        _sample(stack.env, day)
    first = _backfill_and_wait(stack, "none", None)

    # the same days with `airflow dags test`, from identical inputs, into another data root
    ref = _home_env(os.environ, stack.tmp / "ref_home", stack.tmp / "ref_data", REF_REDIS_DB, mysql_scratch)
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


# Runs after the backfill test on purpose: its plays would otherwise be in the backfill's data
# root and play-id counters, and the comparison with in-order `dags test` runs must start clean.
def _garbage(log: Path, lines: int) -> bytes:
    original = log.read_bytes()
    log.write_bytes(original + b"".join(b"not a log line %d\n" % i for i in range(lines)))
    return original


def test_one_alert_per_exhausted_task_and_none_after_a_successful_retry(stack):
    failing_day, retry_day = "2014-02-10", "2014-02-20"
    _sample(stack.env, failing_day)
    _sample(stack.env, retry_day)
    # the failing day: a few malformed lines and a zero reject threshold -> every try fails
    _garbage(stack.log_dir / f"{failing_day}.log", 3)
    # the retried day: rejects far above the default 1% on the first try only
    retry_log = stack.log_dir / f"{retry_day}.log"
    n_lines = len(retry_log.read_bytes().splitlines())
    original = _garbage(retry_log, max(50, n_lines))

    failing = _trigger(stack.api, failing_day, {"max_reject_rate": 0.0})
    retried = _trigger(stack.api, retry_day)

    task = "online_time.sort_and_partition"
    end, restored = time.monotonic() + 300, False
    while time.monotonic() < end and not restored:
        ti = next((t for t in _task_instances(stack.api, retried) if t["task_id"] == task), None)
        if ti and ti["state"] == "up_for_retry":
            retry_log.write_bytes(original)
            restored = True
        elif ti and ti["state"] in ("success", "failed"):
            pytest.fail(f"{task} ended {ti['state']} on try {ti['try_number']} before a retry was seen")
        time.sleep(0.5)
    assert restored, f"{task} of {retried} never went up_for_retry"

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
        assert r["try_number"] == ti["try_number"] == ti["max_tries"] + 1, (r, ti)
        assert r["exception"] and r["timestamp"]
    rec = next(r for r in records if r["task_id"] == task)
    assert "reject" in rec["exception"].lower()
    assert stack.data_root.joinpath("alerts", DAG_ID, failing, f"{task}-try{rec['try_number']}.json").is_file()

    # the retried run: the task failed once, then succeeded -> no alert at all
    ti = next(t for t in _task_instances(stack.api, retried) if t["task_id"] == task)
    assert ti["state"] == "success" and ti["try_number"] == 2, ti
    assert _alerts(stack, retried) == []


# ---- c) backfill ----------------------------------------------------------------------------
