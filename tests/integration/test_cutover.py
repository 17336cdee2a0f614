"""Cutover from the legacy job (CONTRACT §7): the legacy oracle runs two days, its database is dumped the
way mongoexport writes it, the project imports the dump and runs day three; every document equals the
oracle's after three days."""

from __future__ import annotations

import mongomock
import pytest

from include.plays.baseline import CountedDay, baseline_day
from include.plays.documents import all_documents
from include.plays.ingest_plays import ingest_plays
from include.plays.legacy_import import import_dump, import_mongo
from include.plays.totals import read_registry
from include.plays.verify import verify_history
from include.sample_plays import generate_plays
from include.storage import DataRoot
from tests.support.legacy_oracle import LegacyJob, dump_db
from tests.support.mongoexport import export, restore
from tests.support.plays import doc_mismatches, mysql_conn, mysql_hook, put_play, run_day

SAME_MONTH = ["20140129", "20140130", "20140131"]  # Mtraffic carries on from the baseline
NEW_MONTH = ["20140130", "20140131", "20140201"]  # Mtraffic restarts


def _legacy(redis_db, oracle_redis, mysql_db, days):
    """The oracle's database after the first two days (and the plays of all three in both Redis DBs)."""
    hook = mysql_hook(mysql_db)
    for day in days:
        generate_plays(redis_db, hook, day, plays=400, seed=5, bad_rate=0.01, dup_rate=0.005, model="pooled")
        generate_plays(oracle_redis, None, day, plays=400, seed=5, bad_rate=0.01, dup_rate=0.005, model="pooled")
    for r in (redis_db, oracle_redis):  # videos the legacy job counted that are not played after the cutover
        put_play(r, days[0], "9999001_a", j=((1, 3), (2, 3), (3, 1)))
        put_play(r, days[1], "9999002_a", j=())
    db = mongomock.MongoClient()["video"]
    conn = mysql_conn(mysql_db)
    job = LegacyJob(oracle_redis, db, conn)
    job.run_day(days[0])
    job.run_day(days[1])
    return job, db, conn, hook


def _day_three(expected: dict, day: str) -> dict:
    """The documents the project's data root holds after day three alone: every stat document, and day
    three's vdaily / daily / type / play documents."""
    out = {}
    for coll, docs in expected.items():
        if coll.endswith("_stat"):
            out[coll] = docs
        elif coll.endswith(("_vdaily", "_daily", "_type")):
            mine = {k: v for k, v in docs.items() if k == day}
            if mine:
                out[coll] = mine
        else:
            mine = {k: v for k, v in docs.items() if v.get("Date") == day}
            if mine:
                out[coll] = mine
    return out


@pytest.mark.parametrize(("days", "canonical"), [(SAME_MONTH, False), (NEW_MONTH, True)])
def test_import_a_dump_then_day_three_equals_the_legacy_job(redis_db, oracle_redis, mysql_db, mongo, tmp_path,
                                                            days, canonical):
    job, legacy_db, conn, hook = _legacy(redis_db, oracle_redis, mysql_db, days)
    dump = export(legacy_db, tmp_path / "dump", canonical=canonical)
    restore(dump, mongo)  # the site's MongoDB, as the legacy job left it
    before = dump_db(mongo)
    root = DataRoot(str(tmp_path / "root"))
    imported = import_dump(root, str(dump), redis=redis_db)
    assert imported["status"] == "imported" and imported["last_day"] == days[1]
    assert imported["rows"]["vid"] == sum(1 for c, d in before.items() if c.endswith("_stat") for i in d if len(i) == 7)

    job.run_day(days[2])
    conn.close()
    out = run_day(root, redis_db, hook, days[2], mongo_db=mongo, cleanup=True, max_quarantine_rate=0.05)
    assert [c for c in out["verify"] if not c["ok"]] == []
    expected = dump_db(legacy_db)
    # the site's MongoDB: every document equals the oracle's after three days
    assert doc_mismatches(expected, dump_db(mongo)) == []
    # the data root: every stat document, and day three's own documents
    assert doc_mismatches(_day_three(expected, days[2]), all_documents(root)) == []
    # stat documents of videos not played on day three were not sent: byte for byte as the legacy job left them
    played = set(root.read_json("plays", days[2], "docs", "stat_keys.json")["vids"])
    after = dump_db(mongo)
    idle = [(c, v) for c, d in before.items() if c.endswith("_stat") for v in d if len(v) == 7 and v not in played]
    assert ("9999_stat", "9999001") in idle and all(after[c][v] == before[c][v] for c, v in idle)
    assert redis_db.hgetall("vid_playid") == {k: v for k, v in oracle_redis.hgetall("vid_playid").items()
                                              if k in redis_db.hgetall("vid_playid")}
    checks = verify_history(root, mongo, redis_db)
    assert [c for c in checks if not c["ok"]] == [] and "baseline_intact" in [c["name"] for c in checks]


def test_import_from_the_live_database_and_play_ids_continue_from_it(redis_db, oracle_redis, mysql_db, tmp_path):
    days = SAME_MONTH
    job, legacy_db, conn, hook = _legacy(redis_db, oracle_redis, mysql_db, days)
    root, other = DataRoot(str(tmp_path / "root")), DataRoot(str(tmp_path / "other"))
    via_mongo = import_mongo(root, legacy_db)
    via_dump = import_dump(other, str(export(legacy_db, tmp_path / "dump")))
    assert via_mongo["fingerprint"] == via_dump["fingerprint"] and via_mongo["last_day"] == days[1]
    job.run_day(days[2])
    conn.close()
    # no MongoDB and a Redis without vid_playid: play ids continue from the baseline's PlayID
    out = run_day(root, redis_db, hook, days[2], max_quarantine_rate=0.05)
    assert [c for c in out["verify"] if not c["ok"]] == []
    assert out["ingest"]["playid_from_root"] > 0 and out["ingest"]["playid_from_zero"] == 0
    expected = dump_db(legacy_db)
    assert doc_mismatches(_day_three(expected, days[2]), all_documents(root)) == []


def test_plays_of_a_day_the_legacy_job_counted_are_refused(redis_db, oracle_redis, mysql_db, tmp_path):
    days = NEW_MONTH
    job, legacy_db, conn, hook = _legacy(redis_db, oracle_redis, mysql_db, days)
    conn.close()
    root = DataRoot(str(tmp_path / "root"))
    import_mongo(root, legacy_db)
    for day in days[:2]:
        with pytest.raises(CountedDay, match=rf"plays of {day} refused: that day is already counted by the "
                                             rf"legacy job, whose last day is {days[1]}"):
            ingest_plays(root, redis_db, hook, day)
    assert not root.exists("plays") and redis_db.llen(f"T_endlist_{days[1]}") > 0
    assert baseline_day(read_registry(root)) == days[1]
    run_day(root, redis_db, hook, days[2])  # the next day is taken
    assert read_registry(root)["head"] == days[2]
