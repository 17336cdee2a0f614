"""A stage that loses its lease mid-stage stops before it commits (issue 20, item 6).

Each test runs a stage as the DAG does (``exclusive``: under the day's lease) and, from a hook inside
the stage, makes the lease expire (or another run take it over); the stage must raise ``LeaseLost``
and leave its commit (ids, totals, ``rollup.json``, documents, report, list removal) undone."""

from __future__ import annotations

import time

import pytest

from include.plays import cleanup as cleanup_mod
from include.plays import publish as publish_mod
from include.plays import rollup_videos as rollup_mod
from include.plays.cleanup import cleanup, remove_archived
from include.plays.ingest_plays import ingest_plays
from include.plays.lease import LeaseLost, day_lease, exclusive
from include.plays.publish import publish
from include.plays.rollup_videos import rollup_videos
from include.plays.totals import REGISTRY
from include.storage import DataRoot
from include.verify import write_report
from tests.support.plays import categories, mysql_hook, put_play
from tests.support.redis_scripts import Scripts
from video_analytics.checks import check
from video_analytics.conventions import (
    PLAYID_HASH,
    TOTALS_LEASE,
    endlist_key,
    lease_key,
    parse_ymd,
    plays_path,
)

DAY = "20140107"


def _expire(r, key: str) -> None:
    """Let ``key`` expire now (as a holder stuck past its TTL would), and wait until Redis dropped it."""
    r.pexpire(key, 1)
    while r.exists(key):
        time.sleep(0.005)


def _hook(monkeypatch, module, name: str, then) -> None:
    real = getattr(module, name)

    def wrapped(*args, **kwargs):
        out = real(*args, **kwargs)
        then()
        return out

    monkeypatch.setattr(module, name, wrapped)


@pytest.fixture
def day(redis_db, mysql_db, tmp_path):
    categories(mysql_db, [], [])
    for i in range(6):
        put_play(redis_db, DAY, f"100000{1 + i % 2}_{i}")
    return DataRoot(str(tmp_path / "root")), mysql_hook(mysql_db)


def test_ingest_that_lost_its_lease_reserves_no_ids(redis_db, day, monkeypatch):
    root, hook = day
    # mid-ingest, after the snapshot: the category lookup (the ids are reserved after it)
    _hook(monkeypatch, redis_db, "hmget", lambda: _expire(redis_db, lease_key(DAY)))
    with pytest.raises(LeaseLost, match=lease_key(DAY)):
        exclusive(redis_db, DAY, "ingest_plays", ingest_plays, root, redis_db, hook, DAY)
    assert redis_db.hgetall(PLAYID_HASH) == {}  # no id burned
    assert not root.exists(plays_path(DAY, "ingest.json"))
    monkeypatch.undo()
    out = exclusive(redis_db, DAY, "ingest_plays", ingest_plays, root, redis_db, hook, DAY)
    assert out["new_play_ids"] == 6 and redis_db.hgetall(PLAYID_HASH) == {"1000001": "3", "1000002": "3"}


def test_ingest_that_lost_its_lease_after_reserving_ids_writes_no_report(redis_db, day):
    root, hook = day
    with pytest.raises(LeaseLost), day_lease(redis_db, DAY, "ingest_plays"):
        with Scripts(redis_db, after=lambda n: _expire(redis_db, lease_key(DAY))):  # after the reservation
            ingest_plays(root, redis_db, hook, DAY)
    assert not root.exists(plays_path(DAY, "ingest.json")) and not root.exists(plays_path(DAY, "segments.parquet"))
    out = exclusive(redis_db, DAY, "ingest_plays", ingest_plays, root, redis_db, hook, DAY)  # the retry
    assert out["ingested"] == 6 and redis_db.hgetall(PLAYID_HASH) == {"1000001": "3", "1000002": "3"}


@pytest.mark.parametrize("lost", ["expired", "taken_over"])
def test_rollup_that_lost_its_lease_folds_nothing(redis_db, day, monkeypatch, lost):
    root, hook = day
    exclusive(redis_db, DAY, "ingest_plays", ingest_plays, root, redis_db, hook, DAY)

    def lose():
        _expire(redis_db, lease_key(DAY))
        if lost == "taken_over":
            redis_db.set(lease_key(DAY), "other-host:2:rollup_videos:abcd", ex=60)

    _hook(monkeypatch, rollup_mod, "rollup_day", lose)
    with pytest.raises(LeaseLost):
        exclusive(redis_db, DAY, "rollup_videos", rollup_videos, root, DAY, redis_db)
    assert not root.exists(REGISTRY) and not root.exists(plays_path(DAY, "rollup.json"))
    assert redis_db.get(lease_key(TOTALS_LEASE)) is None  # the totals lease was released
    if lost == "taken_over":  # the new holder keeps its lease: the loser does not release it
        assert redis_db.get(lease_key(DAY)) == "other-host:2:rollup_videos:abcd"
        redis_db.delete(lease_key(DAY))


def test_rollup_that_lost_the_totals_lease_mid_fold_does_not_register(redis_db, day, monkeypatch):
    root, hook = day
    exclusive(redis_db, DAY, "ingest_plays", ingest_plays, root, redis_db, hook, DAY)
    from include.plays import totals

    _hook(monkeypatch, totals, "replay", lambda: _expire(redis_db, lease_key(TOTALS_LEASE)))
    with pytest.raises(LeaseLost, match=lease_key(TOTALS_LEASE)):
        exclusive(redis_db, DAY, "rollup_videos", rollup_videos, root, DAY, redis_db)
    assert not root.exists(REGISTRY) and not root.exists(plays_path(DAY, "rollup.json"))


def test_publish_that_lost_its_lease_sends_nothing(redis_db, day, mongo, monkeypatch):
    root, hook = day
    exclusive(redis_db, DAY, "ingest_plays", ingest_plays, root, redis_db, hook, DAY)
    exclusive(redis_db, DAY, "rollup_videos", rollup_videos, root, DAY, redis_db)
    _hook(monkeypatch, publish_mod, "_changed_play_documents", lambda: _expire(redis_db, lease_key(DAY)))
    with pytest.raises(LeaseLost):
        exclusive(redis_db, DAY, "publish", publish, root, DAY, mongo, redis_db)
    assert [c for c in mongo.list_collection_names() if not c.startswith("_")] == []  # no document sent


def test_verify_report_is_not_written_without_the_lease(redis_db, tmp_path):
    root = DataRoot(str(tmp_path / "root"))
    with pytest.raises(LeaseLost):
        with day_lease(redis_db, DAY, "verify"):
            _expire(redis_db, lease_key(DAY))
            write_report(root, parse_ymd(DAY), {"plays": [check("x", True, "")]})
    assert not root.exists("reports")


def _ready_for_cleanup(redis_db, root, hook):
    exclusive(redis_db, DAY, "ingest_plays", ingest_plays, root, redis_db, hook, DAY)
    exclusive(redis_db, DAY, "rollup_videos", rollup_videos, root, DAY, redis_db)
    write_report(root, parse_ymd(DAY), {"plays": [check("x", True, "")]})
    redis_db.delete(PLAYID_HASH)


def test_cleanup_that_lost_its_lease_removes_nothing(redis_db, day, monkeypatch):
    root, hook = day
    _ready_for_cleanup(redis_db, root, hook)
    before = redis_db.lrange(endlist_key(DAY), 0, -1)
    _hook(monkeypatch, cleanup_mod, "require_passing_report", lambda: _expire(redis_db, lease_key(DAY)))
    with pytest.raises(LeaseLost, match="nothing more was removed"):
        exclusive(redis_db, DAY, "cleanup", cleanup, root, redis_db, DAY)
    assert redis_db.lrange(endlist_key(DAY), 0, -1) == before and len(before) == 6
    assert redis_db.hgetall(PLAYID_HASH) == {} and not root.exists(plays_path(DAY, "cleanup.json"))
    monkeypatch.undo()
    out = exclusive(redis_db, DAY, "cleanup", cleanup, root, redis_db, DAY)
    assert out["removed"] == 6 and out["remaining"] == 0


def test_cleanup_stops_at_the_chunk_where_the_lease_was_lost(redis_db, day):
    """The list removal checks the lease inside each chunk's script: none after the loss."""
    import pyarrow as pa

    keys = pa.array(redis_db.lrange(endlist_key(DAY), 0, -1), pa.string())

    def before(n):  # the lease expires after the second chunk
        if n == 3:
            _expire(redis_db, lease_key(DAY))

    with pytest.raises(LeaseLost, match="after 4 of 6"), day_lease(redis_db, DAY, "cleanup"):
        with Scripts(redis_db, before):  # the lease's own scripts are not counted
            remove_archived(redis_db, DAY, keys, "run1", chunk=2)
    assert redis_db.lrange(endlist_key(DAY), 0, -1) == keys.to_pylist()[4:]


def test_a_renewal_that_finds_the_lease_gone_marks_it_lost(redis_db):
    with day_lease(redis_db, DAY, "x", ttl=3) as lease:
        redis_db.delete(lease_key(DAY))
        assert lease.lost.wait(30)  # the renewer (every ttl/3 s) found it gone
        with pytest.raises(LeaseLost):
            lease.check()
