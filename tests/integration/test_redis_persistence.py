"""Redis keeps its data (issue 21, item 3): the Redis ``scripts/services.sh`` starts is killed -9 in the
middle of an ingest and restarted from its files; running the day again gives the documents and the
play ids of a clean run.

The Redis here is a private one, started by ``scripts/services.sh start-redis`` itself (its flags) on a
free port in a tmp dir, killed and stopped by its pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis as redis_mod

from include.plays.documents import all_documents
from include.plays.ingest_plays import ingest_plays
from include.storage import DataRoot
from tests.support.plays import categories, doc_mismatches, mysql_hook, put_play, run_day
from tests.support.redis_scripts import Scripts
from tests.support.servers import alive, free_port
from video_analytics.conventions import PLAYID_HASH, endlist_key, table_key

ROOT = Path(__file__).resolve().parents[2]
DAY = "20140107"
KID_CACHE = "T_video_kid_info"


class ServicesRedis:
    """``scripts/services.sh start-redis`` on a free port with its data in ``var``."""

    def __init__(self, var: Path):
        self.port = free_port()
        self.var = var
        self.env = {k: v for k, v in os.environ.items() if k != "SERVICES_STARTED_FILE"}
        self.env.update(VIDEO_REDIS_PORT=str(self.port), VIDEO_SERVICES_DIR=str(var))

    def start(self) -> redis_mod.Redis:
        subprocess.run(["bash", str(ROOT / "scripts" / "services.sh"), "start-redis"], env=self.env, check=True,
                       capture_output=True, timeout=60)
        return redis_mod.Redis(host="127.0.0.1", port=self.port, decode_responses=True)

    @property
    def pid(self) -> int:
        return int((self.var / "redis.pid").read_text())

    def kill9(self) -> None:
        pid = self.pid
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.01)

    def stop(self) -> None:
        if (self.var / "redis.pid").exists() and alive(self.pid):
            pid = self.pid
            os.kill(pid, signal.SIGTERM)
            while alive(pid):
                time.sleep(0.05)


def _seed(r) -> None:
    """The collector's data for the day, and what earlier days left: a play id counter, a cached kid."""
    for i in range(30):
        vid = f"100000{1 + i % 3}"
        put_play(r, DAY, f"{vid}_{DAY}{i:04d}")
        r.hincrby(table_key("load", DAY), vid, 2)
        r.hincrby(table_key("play", DAY), vid, 1)
        r.hincrby(table_key("region", DAY), vid + "Guangdong", 2)
    r.hset(PLAYID_HASH, "1000001", 10)
    r.hset(KID_CACHE, "1000002", "sports")


@pytest.fixture
def clean_run(redis_db, mysql_db, tmp_path):
    categories(mysql_db, [("1000001", 1)], [(1, "music")])
    _seed(redis_db)
    root = DataRoot(str(tmp_path / "clean"))
    run_day(root, redis_db, mysql_hook(mysql_db), DAY, cleanup=True)
    return all_documents(root), redis_db.hgetall(PLAYID_HASH)


@pytest.mark.parametrize("when", ["kids", "ids_reserved"])
def test_redis_killed_mid_ingest_keeps_the_day(clean_run, mysql_db, tmp_path, monkeypatch, when):
    docs, ids = clean_run
    assert ids == {"1000001": "20", "1000002": "10", "1000003": "10"}
    srv = ServicesRedis(tmp_path / "services")
    r = srv.start()
    try:
        _seed(r)
        before = r.dbsize()
        # kill -9 Redis in the middle of the ingest, after its snapshot: at the category lookup, or just
        # after the ids were reserved (the reservation must come back with Redis, or the ids would be burned)
        if when == "kids":
            real = r.hmget

            def killed(*args, **kwargs):
                srv.kill9()
                return real(*args, **kwargs)

            monkeypatch.setattr(r, "hmget", killed)
        killer = Scripts(r, after=lambda n: srv.kill9()) if when == "ids_reserved" else contextlib.nullcontext()
        root, hook = DataRoot(str(tmp_path / "crashed")), mysql_hook(mysql_db)
        with killer, pytest.raises(redis_mod.ConnectionError):
            ingest_plays(root, r, hook, DAY)
        monkeypatch.undo()
        r = srv.start()  # from its files
        assert r.llen(endlist_key(DAY)) == 30 and r.hget(KID_CACHE, "1000002") == "sports"
        assert r.dbsize() >= before and r.hget(PLAYID_HASH, "1000001") in ("10", "20")
        run_day(root, r, hook, DAY, cleanup=True)
        assert doc_mismatches(docs, all_documents(root)) == []
        assert r.hgetall(PLAYID_HASH) == ids  # no play id burned
    finally:
        srv.stop()



def test_once_the_day_is_ingested_redis_is_not_needed_to_rebuild_it(redis_db, mysql_db, tmp_path, clean_run):
    """With Redis emptied (the worst restart), running the day again gives the same documents and ids."""
    docs, ids = clean_run
    root = DataRoot(str(tmp_path / "clean"))
    redis_db.flushdb()
    run_day(root, redis_db, mysql_hook(mysql_db), DAY, cleanup=True)
    assert doc_mismatches(docs, all_documents(root)) == []
    assert redis_db.hgetall(PLAYID_HASH) == ids
