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
    assert {"online_time.merge_report", "online_time.windows", "plays.publish"} <= up["verify"]
    assert up["online_time.windows"] == {"online_time.merge_report"}
    assert dag.params["windows"] == [1, 7, 30]
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
    for name, typ in {"window_days": "integer", "shards": ["null", "integer"], "lookback_days": "integer",
                      "max_reject_rate": "number", "max_quarantine_rate": "number",
                      "min_gap": "integer", "timeout": "integer", "post_multiplier": "integer"}.items():
        assert params.get_param(name).schema["type"] == typ
    assert params["window_days"] == 7 and params["shards"] is None and params["max_reject_rate"] == 0.01
    assert (params["min_gap"], params["timeout"], params["post_multiplier"]) == (3, 600, 3)


def test_a_run_processes_its_logical_date_only(dagbag):
    import datetime as dt

    from include.tasks import day_of

    ld = dt.datetime(2014, 1, 7, tzinfo=dt.UTC)
    assert day_of({"params": {"day": "2014-01-03"}, "logical_date": ld}) == dt.date(2014, 1, 7)
    assert "day" not in dagbag.dags["daily_analytics"].params
    with pytest.raises(ValueError):
        day_of({"params": {}})


def test_every_task_has_an_execution_timeout(dagbag):
    for t in dagbag.dags["daily_analytics"].tasks:
        assert t.execution_timeout is not None and t.execution_timeout.total_seconds() > 0, t.task_id


def test_the_dag_does_not_depend_on_the_command_that_parsed_it(tmp_path):
    """Parsed under `airflow dags test` or the dag-processor, the DAG is the same (one DAG version)."""
    code = (
        "import sys, json\n"
        "sys.argv = {argv!r}\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "from airflow.serialization.serialized_objects import DagSerialization\n"
        f"dag = DagBag(dag_folder={str(DAGS)!r}).dags['daily_analytics']\n"
        "print(json.dumps(DagSerialization.to_dict(dag), sort_keys=True, default=str))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "VIDEO_DEADLINE"}
    out = []
    for argv in (["airflow", "dags", "test", "daily_analytics", "2014-01-07"], ["airflow", "dag-processor"]):
        res = subprocess.run([sys.executable, "-c", code.format(argv=argv)], env=env, capture_output=True,
                             text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        out.append(res.stdout.strip().splitlines()[-1])
    assert out[0] == out[1]
    assert '"deadline"' in out[0]


def test_deadline_is_switched_off_by_a_setting_only(monkeypatch):
    from include import alerts

    monkeypatch.delenv("VIDEO_DEADLINE", raising=False)
    monkeypatch.setattr("sys.argv", ["/venv/bin/airflow", "dags", "test", "daily_analytics", "2014-01-07"])
    assert alerts.deadline_alert(hours=1) is not None
    monkeypatch.setenv("VIDEO_DEADLINE", "off")
    assert alerts.deadline_alert(hours=1) is None


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


def test_dict_results_are_one_xcom(dagbag):
    """A task returning a dict pushes it as one XCom, not also one per key (TaskFlow's inference
    from ``-> dict``): each key would be one more execution-API call and row per task."""
    for dag_id in ("daily_analytics", "weekly_video_summary"):
        for t in dagbag.dags[dag_id].tasks:
            assert not getattr(t, "multiple_outputs", False), (dag_id, t.task_id)
