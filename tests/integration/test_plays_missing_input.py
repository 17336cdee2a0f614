"""A missing input is not an empty day (CONTRACT §2; issue 21): no ``T_endlist_D`` and no stored plays
fails with one line; a stored snapshot is processed as it is; ``snapshot/endlist.parquet`` never loses
keys; ``wait_for_plays`` waits for the list (or a snapshot with plays), not the folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from include.plays.documents import all_documents
from include.plays.ingest_keys import MissingInput
from include.plays.ingest_plays import ingest_plays
from include.plays.totals import read_registry
from include.sample_plays import generate_plays
from include.sensors import plays_ready
from include.storage import DataRoot
from tests.support.plays import categories, doc_mismatches, mysql_hook, run_day
from video_analytics.conventions import endlist_key, plays_path

DAY, NEXT = "20140107", "20140108"
ENDLIST = plays_path(DAY, "snapshot", "endlist.parquet")


def _endlist(root: DataRoot, day: str = DAY) -> list[str]:
    return root.read_table(plays_path(day, "snapshot", "endlist.parquet")).column("key").to_pylist()


def _day_done(redis_db, mysql_db, tmp_path, plays: int, seed: int):
    """Day ``DAY`` generated and run once; its data root and MySQL hook."""
    hook = mysql_hook(mysql_db)
    categories(mysql_db, [], [])
    generate_plays(redis_db, hook, DAY, plays=plays, seed=seed)
    root = DataRoot(str(tmp_path / "r"))
    run_day(root, redis_db, hook, DAY)
    return root, hook


def test_no_list_and_no_snapshot_fails_and_moves_nothing(redis_db, mysql_db, tmp_path):
    root, hook = _day_done(redis_db, mysql_db, tmp_path, 120, 3)
    before = all_documents(root)
    with pytest.raises(MissingInput, match=f"T_endlist_{NEXT} does not exist in Redis"):
        ingest_plays(root, redis_db, hook, NEXT)  # a mistyped date
    assert not root.exists(plays_path(NEXT, "snapshot", "endlist.parquet"))
    assert not root.exists(plays_path(NEXT, "ingest.json"))
    assert list(read_registry(root)["days"]) == [DAY]
    assert doc_mismatches(before, all_documents(root)) == []


def test_cli_without_the_list_exits_non_zero_with_one_line(redis_db, mysql_db, tmp_path):
    db = redis_db.connection_pool.connection_kwargs["db"]
    env = dict(os.environ, AIRFLOW_CONN_VIDEO_REDIS=f"redis://127.0.0.1:6379/{db}",
               AIRFLOW_CONN_VIDEO_MYSQL=f"mysql://video:video@127.0.0.1:3306/{mysql_db}")
    env.pop("AIRFLOW_CONN_VIDEO_MONGO", None)
    run = subprocess.run([str(Path(sys.prefix) / "bin" / "video-analytics"), "plays", "--date", NEXT,
                          "--data-root", str(tmp_path / "r")], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert f"T_endlist_{NEXT} does not exist in Redis" in lines[-1] and "Traceback" not in run.stderr


def test_a_lost_list_is_processed_from_the_stored_snapshot(redis_db, mysql_db, tmp_path):
    """After a Redis restart that lost T_endlist_D, a re-run keeps endlist.parquet and every document."""
    hook = mysql_hook(mysql_db)
    categories(mysql_db, [], [])
    generate_plays(redis_db, hook, DAY, plays=200, seed=4)
    redis_db.rpush(endlist_key(DAY), *redis_db.lrange(endlist_key(DAY), 0, 9))  # duplicates, kept as read
    root = DataRoot(str(tmp_path / "r"))
    first = run_day(root, redis_db, hook, DAY)
    keys, docs = _endlist(root), all_documents(root)
    assert len(keys) == 210
    redis_db.delete(endlist_key(DAY))
    again = run_day(root, redis_db, hook, DAY)
    assert _endlist(root) == keys
    assert again["ingest"]["ingested"] == first["ingest"]["ingested"] and again["ingest"]["new_keys"] == 0
    assert again["ingest"]["new_play_ids"] == 0
    assert all(c["ok"] for c in again["verify"]), again["verify"]
    assert doc_mismatches(docs, all_documents(root)) == []


def test_a_shorter_list_never_shrinks_the_endlist_snapshot(redis_db, mysql_db, tmp_path):
    root, hook = _day_done(redis_db, mysql_db, tmp_path, 100, 6)
    keys = _endlist(root)
    redis_db.ltrim(endlist_key(DAY), 90, -1)  # a list that lost most of its entries
    rep = ingest_plays(root, redis_db, hook, DAY)
    now = _endlist(root)
    assert now[:10] == keys[90:] and sorted(now) == sorted(keys)
    assert rep["unique"] == 100 and rep["new_keys"] == 0


def test_wait_for_plays_needs_the_list_or_stored_plays(redis_db, mysql_db, tmp_path):
    root = DataRoot(str(tmp_path / "r"))
    root.write_json({"day": DAY}, plays_path(DAY, "ingest.json"))  # plays/<D>/ exists, without plays
    assert not plays_ready(redis_db, DAY, root)
    hook = mysql_hook(mysql_db)
    categories(mysql_db, [], [])
    generate_plays(redis_db, hook, DAY, plays=30, seed=7)
    assert plays_ready(redis_db, DAY, root)
    ingest_plays(root, redis_db, hook, DAY)
    redis_db.delete(endlist_key(DAY))
    assert plays_ready(redis_db, DAY, root)  # a stored snapshot with plays
    assert not plays_ready(redis_db, NEXT, root)
