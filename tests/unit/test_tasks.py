"""include.tasks: what the DAG's tasks run, and their failure semantics (no Airflow run needed)."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException, AirflowSkipException

from include import settings, tasks
from include.online_time.sort_and_partition import RejectThresholdExceeded
from include.plays.cleanup import CleanupRefused
from include.plays.lease import DayBusy, LeaseLost
from include.plays.publish import DocumentTooLarge
from include.verify import VerificationFailed

CTX = {"logical_date": dt.datetime(2014, 1, 7, tzinfo=dt.UTC), "params": {}}


@pytest.mark.parametrize("exc", [RejectThresholdExceeded("over"), VerificationFailed("x failed"),
                                 CleanupRefused("no report"), DocumentTooLarge("1000001_play _id=2")])
def test_deterministic_failures_fail_at_once(exc):
    with pytest.raises(AirflowFailException, match=type(exc).__name__):
        with tasks._fail_fast():
            raise exc


@pytest.mark.parametrize("exc", [DayBusy("busy"), LeaseLost("lost"), ConnectionRefusedError("refused"),
                                 OSError("disk")])
def test_transient_failures_keep_their_retries(exc):
    with pytest.raises(type(exc)):
        with tasks._fail_fast():
            raise exc


def test_publish_skips_only_when_the_connection_is_not_defined(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_VIDEO_MONGO", raising=False)
    import airflow.sdk

    def not_defined(conn_id):
        raise AirflowNotFoundException(f"The conn_id `{conn_id}` isn't defined")

    monkeypatch.setattr(airflow.sdk.Connection, "get", staticmethod(not_defined))
    assert settings.mongo_db() is None
    with pytest.raises(AirflowSkipException, match="not defined"):
        tasks.publish(CTX, {"day": "20140107"})

    def backend_down(conn_id):
        raise RuntimeError("secrets backend timed out")

    monkeypatch.setattr(airflow.sdk.Connection, "get", staticmethod(backend_down))
    with pytest.raises(RuntimeError, match="timed out"):
        settings.mongo_db()
    with pytest.raises(RuntimeError, match="timed out"):
        tasks.publish(CTX, {"day": "20140107"})


def test_publish_fails_when_writing_fails(monkeypatch):
    class Broken:
        def __getitem__(self, name):
            raise ConnectionError("mongo refused")

    monkeypatch.setattr(settings, "mongo_db", lambda: Broken())
    monkeypatch.setattr(tasks, "_exclusive", lambda day, stage, fn, *a, **k: fn(*a, **k))
    monkeypatch.setattr("include.plays.publish.publish", lambda root, day, db, redis: db["x"])
    monkeypatch.setattr(settings, "data_root", lambda: None)
    monkeypatch.setattr(settings, "redis_client", lambda: None)
    with pytest.raises(ConnectionError):
        tasks.publish(CTX, {"day": "20140107"})


def test_merge_report_reads_the_mapped_results_in_one_slice(monkeypatch):
    """Airflow's lazy sequence of mapped results makes one API call per item when iterated, one
    for a slice: merge_report must take the slice."""
    import include.online_time.merge_report as mr

    class Lazy:
        def __init__(self, items):
            self.items = items

        def __iter__(self):
            raise AssertionError("iterated item by item")

        def __getitem__(self, key):
            assert isinstance(key, slice)
            return self.items[key]

    seen = {}
    import types

    monkeypatch.setattr(mr, "merge_report",
                        lambda root, day, results, mongo_db=None: seen.update(r=results) or {"users": 1})
    monkeypatch.setattr(settings, "data_root", lambda: types.SimpleNamespace(uri=lambda *parts: "/".join(parts)))
    monkeypatch.setattr(settings, "mongo_db", lambda: None)
    assert tasks.merge_report(CTX, Lazy([{"index": 0}, {"index": 1}])) == {"users": 1}
    assert seen["r"] == [{"index": 0}, {"index": 1}]
    assert tasks.merge_report(CTX, [{"index": 2}]) == {"users": 1} and seen["r"] == [{"index": 2}]


def test_task_slots_is_core_parallelism(monkeypatch):
    from video_analytics import conventions as conv

    monkeypatch.setenv("AIRFLOW__CORE__PARALLELISM", "3")
    assert tasks.task_slots() == 3
    monkeypatch.setenv("AIRFLOW__CORE__PARALLELISM", "0")
    assert tasks.task_slots() == conv.SHARDS


def test_every_task_function_freezes_the_heap_first(monkeypatch):
    import gc

    calls = []
    monkeypatch.setattr(gc, "freeze", lambda: calls.append(1))
    assert tasks.wait_for_logs.__wrapped__ and tasks.compute_shard.__name__ == "compute_shard"
    with pytest.raises(KeyError):
        tasks.sort_and_partition({})  # no params: fails after the freeze
    assert calls == [1]
