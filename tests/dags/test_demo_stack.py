"""The quick start: the demo stack schedules no run of a real date, `make up WORKERS=N` raises
`[core] parallelism` with the workers, and README's MongoDB URI works as written."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "dags" / "daily_analytics.py"


def _parse_dag(monkeypatch, end: str | None, dag_id: str = "daily_analytics"):
    """``dag_id`` parsed afresh, as the DAG processor does, with ``VIDEO_SCHEDULE_END_DATE=end``."""
    if end is None:
        monkeypatch.delenv("VIDEO_SCHEDULE_END_DATE", raising=False)
    else:
        monkeypatch.setenv("VIDEO_SCHEDULE_END_DATE", end)
    monkeypatch.setenv("VIDEO_DEADLINE", "off")
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    bag = DagBag(dag_folder=str(ROOT / "dags" / f"{dag_id}.py"))
    assert bag.import_errors == {}, bag.import_errors
    # the scheduler's view of it: the serialized DAG, its core timetable and time restriction
    return DagSerialization.from_dict(DagSerialization.to_dict(bag.dags[dag_id]))


def _next_scheduled(dag):
    """The first run the scheduler would create now (catchup off), as its data interval start, or None."""
    info = dag.next_dagrun_info(last_automated_run_info=None)
    return None if info is None else info.data_interval.start


def test_the_demo_schedule_ends_at_the_demo_day(monkeypatch):
    dag = _parse_dag(monkeypatch, "2014-01-07")
    assert dag.end_date == dt.datetime(2014, 1, 7, tzinfo=dt.UTC)
    assert _next_scheduled(dag) is None  # no scheduled run at all, let alone of a real date
    # backfills of the demo days still have their runs (Airflow's backfill asks the timetable this)
    days = [i.logical_date.date().isoformat() for i in dag.iter_dagrun_infos_between(
        dt.datetime(2014, 1, 5, tzinfo=dt.UTC), dt.datetime(2014, 1, 7, tzinfo=dt.UTC))]
    assert days == ["2014-01-05", "2014-01-06", "2014-01-07"]


def test_the_demo_stack_schedules_no_maintenance_either(monkeypatch):
    """Its retention counts back from today: a real-date run would prune the 2014 demo days."""
    dag = _parse_dag(monkeypatch, "2014-01-07", "maintenance")
    assert _next_scheduled(dag) is None
    assert _next_scheduled(_parse_dag(monkeypatch, None, "maintenance")) is not None


def test_without_the_setting_the_schedule_is_open(monkeypatch):
    """Production: no end; the scheduler's next run is a recent day (what the demo stack must not do)."""
    dag = _parse_dag(monkeypatch, None)
    assert dag.end_date is None
    start = _next_scheduled(dag)
    assert start is not None and start.date() >= dt.date.today() - dt.timedelta(days=2)


@pytest.mark.parametrize("bad", ["yesterday", "2014-13-45", "2014-01-07; rm -rf /", "1" * 500])
def test_a_bad_end_date_is_one_line_naming_the_variable(monkeypatch, bad):
    from include.settings import schedule_end_date

    monkeypatch.setenv("VIDEO_SCHEDULE_END_DATE", bad)
    with pytest.raises(ValueError) as exc:
        schedule_end_date()
    msg = str(exc.value)
    assert msg.startswith("VIDEO_SCHEDULE_END_DATE=") and "not a date" in msg and "\n" not in msg
    assert len(msg) < 120


def test_make_demo_and_up_bound_the_schedule_and_can_be_opened():
    def dry(*args: str) -> str:
        return subprocess.run(["make", "-n", "-C", str(ROOT), *args], capture_output=True, text=True,
                              timeout=60).stdout

    up = [line for line in dry("up").splitlines() if "airflow_stack.sh up" in line]
    assert up and all("VIDEO_SCHEDULE_END_DATE=2014-01-07 " in line for line in up), up
    demo = [line for line in dry("demo").splitlines() if "airflow dags test" in line]
    assert demo and "VIDEO_SCHEDULE_END_DATE=2014-01-07 " in demo[0], demo
    moved = [line for line in dry("up", "DEMO_DATE=2014-02-01").splitlines() if "airflow_stack.sh up" in line]
    assert "VIDEO_SCHEDULE_END_DATE=2014-02-01 " in moved[0]
    opened = [line for line in dry("up", "SCHEDULE_END=").splitlines() if "airflow_stack.sh up" in line]
    assert "VIDEO_SCHEDULE_END_DATE= " in opened[0]


def _parallelism(env: dict[str, str], twice: dict[str, str] | None = None) -> str:
    """``AIRFLOW__CORE__PARALLELISM`` after sourcing scripts/env.sh (then again with ``twice`` added)."""
    again = ""
    if twice is not None:
        again = " ".join(f"{k}={v}" for k, v in twice.items()) + f" bash -c '. {ROOT}/scripts/env.sh && "
        again += "echo $AIRFLOW__CORE__PARALLELISM'"
    script = f". {ROOT}/scripts/env.sh && " + (again or "echo $AIRFLOW__CORE__PARALLELISM")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True, timeout=30,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT), **env})
    return out.stdout.strip()


def test_parallelism_follows_the_workers_unless_set():
    assert _parallelism({}) == "4"  # make up: 2 workers x 2 slots
    assert _parallelism({"WORKERS": "4"}) == "8"
    assert _parallelism({"WORKERS": "3", "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4"}) == "12"
    assert _parallelism({"WORKERS": "4", "AIRFLOW__CORE__PARALLELISM": "5"}) == "5"  # the operator's value
    assert _parallelism({"WORKERS": "4", "AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}) == "4"
    for hostile in ("x", "-2", "0", "4; echo", "99999999999999999999999"):
        assert _parallelism({"WORKERS": hostile}) == "4", hostile
    # `. scripts/env.sh` in a shell first, then `make up WORKERS=4`: still raised
    assert _parallelism({}, twice={"WORKERS": "4"}) == "8"
    assert _parallelism({"AIRFLOW__CORE__PARALLELISM": "6"}, twice={"WORKERS": "4"}) == "6"


def test_readme_mongo_uri_is_a_connection_the_mongo_client_factory_accepts(monkeypatch):
    """The production example in README, exactly as written: Airflow parses it into a `mongo` connection
    and include.settings.mongo_db builds a client from it (lazily: nothing is connected)."""
    from airflow.models.connection import Connection

    from include import settings

    found = re.findall(r"AIRFLOW_CONN_VIDEO_MONGO=(\S+?)`", (ROOT / "README.md").read_text())
    assert found, "README.md gives no AIRFLOW_CONN_VIDEO_MONGO example"
    uri = found[0]
    conn = Connection(conn_id="video_mongo", uri=uri)
    assert conn.conn_type == "mongo" and conn.host and conn.schema == "video"
    assert conn.extra_dejson.get("authSource") == "admin"
    monkeypatch.setenv("AIRFLOW_CONN_VIDEO_MONGO", uri)
    monkeypatch.setenv("VIDEO_CONNECT_TIMEOUT_SECONDS", "0.2")
    db = settings.mongo_db()
    try:
        assert db.name == "video"
        client = db.client
        assert client.options.server_selection_timeout == pytest.approx(0.2)
        assert client.options.pool_options._credentials.source == "admin"
        assert (conn.host, conn.port) in {(h, p) for h, p in client.topology_description.server_descriptions()}
    finally:
        db.client.close()

