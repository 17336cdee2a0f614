"""The ``maintenance`` DAG: daily, one thin task, the retention settings as bounded, typed params."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "maintenance.py"


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.dags["maintenance"]


def test_daily_one_task_params_bounded(dag):
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable" and dag.catchup is False
    assert sorted(dag.task_ids) == ["capture_categories", "prune"] and dag.max_active_runs == 1
    for t in dag.tasks:
        assert t.retries >= 2 and t.on_failure_callback and t.execution_timeout is not None
    for name, low in (("shard_days", 0), ("snapshot_days", 1), ("quarantine_days", 1)):
        schema = dag.params.get_param(name).schema
        assert schema["type"] == ["null", "integer"] and schema["minimum"] == low and schema["maximum"] == 36500
        assert dag.params[name] is None
    assert dag.params.get_param("dry_run").schema["type"] == "boolean"


@pytest.mark.parametrize("value", [-1, 10**9, "90", 1.5, float("nan")])
def test_hostile_params_are_refused_by_airflow(dag, value):
    import copy

    param = copy.deepcopy(dag.params.get_param("snapshot_days"))
    with pytest.raises(Exception, match="snapshot_days|valid|minimum|maximum|type"):
        param.resolve(value)
    assert param.resolve(90) == 90


@pytest.mark.parametrize("name,call", [("prune", "pr.maintenance(get_current_context())"),
                                       ("capture_categories", "dashboard.categories_task(get_current_context())")])
def test_each_task_is_one_call_into_include(name, call):
    tree = ast.parse(DAG_FILE.read_text())
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    assert len(body) == 1 and ast.unparse(body[0]) == f"return {call}"
