"""Cleanup killed midway resumes in linear time and keeps every play pushed after the snapshot
(issue 21, item 5; CONTRACT §4)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from include.plays.cleanup import progress_key, remove_archived
from tests.support.redis_scripts import Scripts
from video_analytics.conventions import endlist_key

DAY = "20140107"
NAME = endlist_key(DAY)


class Killed(BaseException):
    """The process died here."""


def _die_at(call: int):
    def before(n):
        if n == call:
            raise Killed()

    return before


def _archive(n: int) -> list[str]:
    keys = [f"{1000000 + i % 7}_{i}" for i in range(n)]
    keys[5] = keys[1]  # a duplicate in the list: removed as often as it was archived
    return keys


def test_killed_cleanup_resumes_where_it_stopped_and_keeps_late_plays(redis_db):
    archived = _archive(23)
    redis_db.rpush(NAME, *archived)
    keys = pa.array(archived, pa.string())
    with Scripts(redis_db, _die_at(3)), pytest.raises(Killed):
        remove_archived(redis_db, DAY, keys, "run1", chunk=5)
    assert redis_db.lrange(NAME, 0, -1) == archived[10:]
    redis_db.rpush(NAME, "1000001_late", archived[0])  # arrived meanwhile (one a re-push of an archived key)
    with Scripts(redis_db) as s:
        out = remove_archived(redis_db, DAY, keys, "run1", chunk=5)
    assert out == {"removed": 13, "resumed_at": 10, "round_trips": 4}
    assert s.calls == 3  # chunks 10-14, 15-19, 20-22: nothing removed before is looked for again
    assert redis_db.lrange(NAME, 0, -1) == ["1000001_late", archived[0]]
    again = remove_archived(redis_db, DAY, keys, "run1", chunk=5)  # done: nothing more goes
    assert again["removed"] == 0 and redis_db.llen(NAME) == 2


@pytest.mark.parametrize("progress", ["none", "another_run", "behind"])
def test_resume_without_a_usable_record_finds_the_head(redis_db, progress):
    """An older cleanup (one LREM per key, in order) killed after 8 keys, or a record lost or stale: the
    list's head is found in the archive, once, and removal goes on from there."""
    archived = _archive(23)
    redis_db.rpush(NAME, *archived[8:], "1000002_late")
    if progress == "another_run":
        redis_db.set(progress_key(DAY), "run0:15")
    elif progress == "behind":
        redis_db.set(progress_key(DAY), "run1:5")
    out = remove_archived(redis_db, DAY, pa.array(archived, pa.string()), "run1", chunk=5)
    assert out["removed"] == 15 and redis_db.lrange(NAME, 0, -1) == ["1000002_late"]


def test_a_list_not_starting_with_the_archive_loses_nothing(redis_db):
    archived = _archive(12)
    redis_db.rpush(NAME, *archived)
    redis_db.lpush(NAME, "1000003_pushed_at_the_head")  # not the collector's way: nothing is removed blindly
    out = remove_archived(redis_db, DAY, pa.array(archived, pa.string()), "run1", chunk=5)
    assert out["removed"] == 0 and redis_db.llen(NAME) == 13


def test_an_archive_whose_keys_were_removed_by_hand_is_done(redis_db):
    archived = _archive(12)
    redis_db.rpush(NAME, "1000004_late")
    out = remove_archived(redis_db, DAY, pa.array(archived, pa.string()), "run1", chunk=5)
    assert out["removed"] == 0 and redis_db.lrange(NAME, 0, -1) == ["1000004_late"]
