"""Assets: which tasks update them, the downstream example DAG scheduled on them, the events' metadata."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pyarrow as pa
import pytest

from include import assets
from include.storage import DataRoot
from include.verify import build_report
from video_analytics import conventions as conv

DAGS = __import__("pathlib").Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def _names(items) -> set[str]:
    return {a.name for a in items}


def test_producing_tasks_declare_their_assets(dagbag):
    dag = dagbag.dags["daily_analytics"]
    assert _names(dag.get_task("online_time.merge_report").outlets) == {"video_online_time"}
    assert _names(dag.get_task("plays.rollup_videos").outlets) == {"video_play_documents"}
    assert _names(dag.get_task("plays.publish").outlets) == {"video_play_documents_mongodb"}
    assert _names(dag.get_task("verify").outlets) == {"video_daily_verified"}
    for a in (assets.ONLINE_TIME, assets.PLAY_DOCUMENTS, assets.DAILY_VERIFIED):
        assert a.uri.startswith(("file:///", "s3://", "gs://")) or "://" in a.uri


def test_weekly_summary_is_scheduled_on_the_verified_asset(dagbag):
    dag = dagbag.dags["weekly_video_summary"]
    assert type(dag.timetable).__name__ == "AssetTriggeredTimetable"
    assert "video_daily_verified" in str(dag.timetable.asset_condition)
    (t,) = dag.tasks
    assert _names(t.inlets) == {"video_online_time", "video_play_documents", "video_daily_verified"}


class _Events(dict):
    def __missing__(self, key):
        self[key] = SimpleNamespace(extra={})
        return self[key]


def _day(root: DataRoot, day: dt.date, ok: bool = True) -> None:
    root.write_table(pa.table({"userid": [1, 2], "online_seconds": [10, 30], "sessions": [1, 1]}),
                     conv.online_time_path(day, "online_time.parquet"))
    root.write_json({"users": 2, "online_seconds": 40, "rows_in": 10, "rejects": 1}, conv.online_time_path(day, "totals.json"))
    root.write_json({"ingested": 9, "unique": 10, "quarantined": 1}, conv.plays_path(conv.ymd(day), "ingest.json"))
    root.write_json(build_report(day, {"plays": [{"name": "x", "ok": ok, "detail": ""}]}), conv.report_path(day))


def test_events_carry_the_day_counts_and_verify_outcome(tmp_path, monkeypatch):
    from include import tasks

    root = DataRoot(str(tmp_path))
    monkeypatch.setenv("AIRFLOW_VAR_DATA_ROOT", str(tmp_path))
    day = dt.date(2014, 1, 7)
    _day(root, day)
    monkeypatch.setattr("include.verify.verify_day", lambda *a, **k: {"day": "2014-01-07", "ok": True})
    monkeypatch.setattr(tasks, "_exclusive", lambda d, stage, fn, *a, **k: fn(*a, **k))
    monkeypatch.setattr("include.settings.mongo_db", lambda: None)
    ctx = {"logical_date": dt.datetime(2014, 1, 7, tzinfo=dt.UTC), "outlet_events": _Events(),
           "params": {"window_days": 7, "max_reject_rate": 0.01, "max_quarantine_rate": 0.01}}
    tasks.verify(ctx)
    extra = ctx["outlet_events"][assets.DAILY_VERIFIED].extra
    assert extra["day"] == "2014-01-07" and extra["verify"] == "passed"
    assert (extra["users"], extra["online_seconds"], extra["plays"], extra["quarantined"]) == (2, 40, 9, 1)
    assert extra["reject_rate"] == 0.1 and extra["quarantine_rate"] == 0.1
    meta = assets.online_time_metadata("2014-01-07", {"users": 2, "online_seconds": 40, "rows_in": 10, "rejects": 1}, "u")
    assert meta["reject_rate"] == 0.1 and meta["users"] == 2
    assets.emit({}, assets.ONLINE_TIME, {"x": 1})  # outside Airflow: no events, no error
    rollup = {"plays": 5, "day_documents": 9, "totals": {"head": "20140107", "days_folded": ["20140107"]}}
    meta = assets.play_documents_metadata("2014-01-07", rollup, "u")
    assert (meta["plays"], meta["documents"], meta["totals_head"], meta["days_folded"]) == (5, 9, "20140107", 1)
    assert meta["verify"].startswith("pending")


def test_weekly_summary_uses_the_triggering_day(tmp_path, monkeypatch):
    from include import tasks

    root = DataRoot(str(tmp_path))
    monkeypatch.setenv("AIRFLOW_VAR_DATA_ROOT", str(tmp_path))
    for i, ok in zip(range(1, 10), [True] * 5 + [False] + [True] * 3, strict=True):
        _day(root, dt.date(2014, 1, i), ok)
    ev = SimpleNamespace(extra={"day": "2014-01-07"})
    out = tasks.weekly_summary({"triggering_asset_events": {assets.DAILY_VERIFIED: [ev]}})
    assert out["end"] == "2014-01-07" and out["days_with_results"] == 7
    assert out["days_verified"] == 6 and out["days_failed"] == ["2014-01-06"] and out["plays"] == 63
    assert root.read_json("summaries/weekly/2014-01-07.json")["plays"] == 63
    assert tasks.weekly_summary({})["end"] == "2014-01-09"
