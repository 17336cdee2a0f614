"""DAG integrity and policy: imports, tags, retries, alerts, docs, params, shape, parse cost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
HEAVY = ("pandas", "pyarrow", "numpy", "redis", "pymongo", "MySQLdb", "duckdb", "fsspec")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_every_dag_imports(dagbag):
    assert dagbag.import_errors == {}, dagbag.import_errors
    assert "daily_analytics" in dagbag.dags


def test_policy_tags_retries_callbacks(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and dag.doc_md.strip(), f"{dag_id} has no doc_md"
        for t in dag.tasks:
            assert t.retries >= 2, f"{dag_id}.{t.task_id} retries={t.retries}"
            assert t.on_failure_callback, f"{dag_id}.{t.task_id} has no failure callback"
            assert (t.doc_md or "").strip(), f"{dag_id}.{t.task_id} has no doc_md"


def test_daily_analytics_shape(dagbag):
    dag = dagbag.dags["daily_analytics"]
    ids = set(dag.task_ids)
    assert {
        "wait_for_logs", "wait_for_plays",
        "online_time.sort_and_partition", "online_time.compute_shard", "online_time.merge_report",
        "plays.ingest_plays", "plays.rollup_videos", "plays.publish",
        "verify", "cleanup",
    } <= ids
    up = {t: set(dag.get_task(t).upstream_task_ids) for t in ids}
    assert "wait_for_logs" in up["online_time.sort_and_partition"]
    assert "wait_for_plays" in up["plays.ingest_plays"]
    assert {"online_time.merge_report", "plays.publish"} <= up["verify"]
    assert up["cleanup"] == {"verify"}
    assert type(dag.get_task("online_time.compute_shard")).__name__.endswith("MappedOperator")
    for sensor in ("wait_for_logs", "wait_for_plays"):
        assert dag.get_task(sensor).mode == "reschedule", "sensors must not hold a worker slot"
    assert dag.get_task("plays.publish").pool == "video_publish"


def test_timetable_processes_logical_day(dagbag):
    """The run with logical date D covers [D, D+1)."""
    import pendulum
    from airflow.timetables.interval import CronDataIntervalTimetable

    dag = dagbag.dags["daily_analytics"]
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    core = CronDataIntervalTimetable(dag.timetable.expression, timezone=dag.timetable.timezone)
    d = pendulum.datetime(2014, 1, 7, tz="UTC")
    info = core.next_dagrun_info(last_automated_data_interval=None, restriction=_restriction(d))
    assert info.logical_date == d
    assert info.data_interval.start == d and info.data_interval.end == d.add(days=1)
    assert dag.catchup is False


def _restriction(start):
    from airflow.timetables.base import TimeRestriction

    return TimeRestriction(earliest=start, latest=None, catchup=True)


def test_params_are_typed(dagbag):
    params = dagbag.dags["daily_analytics"].params
    for name, typ in {"window_days": "integer", "shards": "integer", "lookback_days": "integer",
                      "max_reject_rate": "number", "max_quarantine_rate": "number",
                      "min_gap": "integer", "timeout": "integer", "post_multiplier": "integer"}.items():
        assert params.get_param(name).schema["type"] == typ
    assert params["window_days"] == 7 and params["shards"] == 8 and params["max_reject_rate"] == 0.01
    assert (params["min_gap"], params["timeout"], params["post_multiplier"]) == (3, 600, 3)


def test_run_day_uses_logical_date_or_param():
    import datetime as dt

    from include.settings import run_day

    ld = dt.datetime(2014, 1, 7, tzinfo=dt.UTC)
    assert run_day({"params": {"day": None}, "logical_date": ld}) == dt.date(2014, 1, 7)
    assert run_day({"params": {"day": "2014-01-03"}, "logical_date": ld}) == dt.date(2014, 1, 3)


def _import_probe(path: Path) -> dict:
    code = (
        "import sys, time, json, importlib.util\n"
        "import airflow.sdk\n"
        f"spec = importlib.util.spec_from_file_location('probe_dag', {str(path)!r})\n"
        "mod = importlib.util.module_from_spec(spec)\n"
        f"before = {{m for m in {HEAVY!r} if m in sys.modules}}\n"
        "t = time.perf_counter(); spec.loader.exec_module(mod); dt = time.perf_counter() - t\n"
        f"print(json.dumps({{'seconds': dt, 'heavy': [m for m in {HEAVY!r} if m in sys.modules and m not in before]}}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ.copy(),
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("path", sorted(DAGS.glob("*.py")), ids=lambda p: p.name)
def test_dag_file_parse_is_cheap(path):
    """No heavy imports at parse time, and the file itself imports in well under a second."""
    runs = [_import_probe(path) for _ in range(3)]
    assert runs[0]["heavy"] == [], f"{path.name} imports {runs[0]['heavy']} at parse time"
    median = sorted(r["seconds"] for r in runs)[1]
    assert median < 1.0, f"{path.name} took {median:.3f}s to import"
