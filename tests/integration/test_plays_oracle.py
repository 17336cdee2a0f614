"""The new pipeline against the legacy port (tests/legacy_oracle.py) on generated multi-day data."""

from __future__ import annotations

from include.plays.documents import all_documents
from include.sample_plays import generate_plays
from include.storage import DataRoot
from tests.support.legacy_oracle import LegacyJob, dump_db
from tests.support.plays import doc_mismatches, mysql_conn, mysql_hook, run_day

DAYS = ["20140130", "20140131", "20140201"]  # crosses a month: Mtraffic resets


def test_matches_legacy_oracle_field_by_field(redis_db, oracle_redis, mysql_db, mongo, tmp_path):
    import mongomock

    hook = mysql_hook(mysql_db)
    for day in DAYS:
        generate_plays(redis_db, hook, day, plays=600, seed=3, bad_rate=0.01, dup_rate=0.005)
        generate_plays(oracle_redis, None, day, plays=600, seed=3, bad_rate=0.01, dup_rate=0.005)
    legacy_db = mongomock.MongoClient()["video"]
    conn = mysql_conn(mysql_db)
    job = LegacyJob(oracle_redis, legacy_db, conn)
    root = DataRoot(str(tmp_path / "root"))
    for day in DAYS:
        job.run_day(day)
        out = run_day(root, redis_db, hook, day, mongo_db=mongo, cleanup=True, max_quarantine_rate=0.05)
        assert [c for c in out["verify"] if not c["ok"]] == []
        assert out["ingest"]["quarantined"] > 0 and out["ingest"]["duplicates"] > 0
    conn.close()
    expected = dump_db(legacy_db)
    assert sum(len(v) for v in expected.values()) > 800
    assert doc_mismatches(expected, all_documents(root)) == []
    assert doc_mismatches(expected, dump_db(mongo)) == []
    # same plays quarantined, for the same reasons
    mine = set()
    for day in DAYS:
        q = root.read_table("plays", day, "quarantine.parquet", columns=["key", "reason"]).to_pylist()
        mine |= {(r["key"], r["reason"]) for r in q}
    assert mine == set(job.quarantined)
    # the legacy job also empties T_endlist_D
    for day in DAYS:
        assert redis_db.llen(f"T_endlist_{day}") == oracle_redis.llen(f"T_endlist_{day}") == 0
    assert redis_db.hgetall("vid_playid") == oracle_redis.hgetall("vid_playid")
