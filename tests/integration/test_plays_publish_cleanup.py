"""Publishing (owned fields only, stale sub-keys gone) and cleanup (later arrivals stay)."""

from __future__ import annotations

import pytest

from include.plays.cleanup import CleanupRefused, cleanup
from include.plays.ingest_plays import ingest_plays
from include.plays.rollup_videos import rollup_videos
from include.plays.verify import verify_plays
from include.storage import DataRoot
from include.verify import write_report
from tests.support.plays import GOOD_S, categories, mysql_hook, put_play, run_day
from video_analytics.checks import check
from video_analytics.conventions import parse_ymd

DAY = "20140107"


def test_publish_sets_owned_fields_and_leaves_foreign_ones(redis_db, mysql_db, mongo, tmp_path):
    categories(mysql_db, [("1000001", 1)], [(1, "music")])
    mongo["1000_stat"].insert_one({"_id": "1000001", "Title": "keep me", "Traffic": 999.0,
                                   "Geo": {"Mars": {"ClickNum": 5}}})
    mongo["1000_vdaily"].insert_one({"_id": DAY, "1000001": {"Stale": 1}, "1000999": {"Traffic": 1.0}})
    mongo["1000001_play"].insert_one({"_id": 1, "Note": "foreign"})
    for i in range(3):
        put_play(redis_db, DAY, f"1000001_{i}")
    root = DataRoot(str(tmp_path / "r"))
    out = run_day(root, redis_db, mysql_hook(mysql_db), DAY, mongo_db=mongo)
    assert all(c["ok"] for c in out["verify"]), out["verify"]
    pub = out["publish"]
    assert pub["upserts"] == 3 + 3 + 2 and pub["bulk_calls"] == 5  # plays, vdaily, daily, type, stat
    stat = mongo["1000_stat"].find_one({"_id": "1000001"})
    assert stat["Title"] == "keep me" and stat["Traffic"] == 301.5 and set(stat["Geo"]) == {"Guangdong"}
    vd = mongo["1000_vdaily"].find_one({"_id": DAY})
    assert "Stale" not in vd["1000001"] and vd["1000999"] == {"Traffic": 1.0}
    assert mongo["1000001_play"].find_one({"_id": 1})["Note"] == "foreign"
    # the published documents are checked against the data root, and the check can fail
    mongo["1000_daily"].update_one({"_id": DAY}, {"$set": {"Traffic": 1.0}})
    bad = [c for c in verify_plays(root, DAY, mongo) if not c["ok"]]
    assert [c["name"] for c in bad] == ["published_documents_match"]


def test_publish_refuses_a_document_over_16_mib_naming_it_and_sends_nothing(redis_db, mysql_db, mongo, tmp_path):
    """CONTRACT §2: no document over MongoDB's 16 MiB is sent (a 17 MiB ``K_z1`` makes a 17 MiB play
    document); the publish fails naming it, before any document of the day went out."""
    from include.plays.publish import DocumentTooLarge, publish

    categories(mysql_db, [("1000001", 1)], [(1, "music")])
    put_play(redis_db, DAY, "1000001_a")
    put_play(redis_db, DAY, "1000001_b", z1="u" * (17 << 20))
    root = DataRoot(str(tmp_path / "r"))
    ingest_plays(root, redis_db, mysql_hook(mysql_db), DAY)
    rollup_videos(root, DAY, redis_db)
    with pytest.raises(DocumentTooLarge, match=r"^document 1000001_play _id=2 is 17,8\d\d,\d\d\d bytes of BSON"):
        publish(root, DAY, mongo, redis_db)
    assert [c for c in mongo.list_collection_names() if not c.startswith("_")] == []


def test_cleanup_removes_archived_keys_only_and_never_lowers_playids(redis_db, mysql_db, tmp_path):
    categories(mysql_db, [], [])
    for i in range(5):
        put_play(redis_db, DAY, f"1000001_{i}")
    put_play(redis_db, DAY, "1000001_bad", s=None)
    put_play(redis_db, DAY, "1000001_0", s=GOOD_S)  # a duplicate
    root = DataRoot(str(tmp_path / "r"))
    ingest_plays(root, redis_db, mysql_hook(mysql_db), DAY)
    rollup_videos(root, DAY)
    put_play(redis_db, DAY, "1000001_late")           # arrives after the snapshot
    redis_db.hset("vid_playid", "1000001", 2)         # someone lowered it
    write_report(root, parse_ymd(DAY), {"plays": [check("stub_for_cleanup", True, "")]})
    out = cleanup(root, redis_db, DAY)
    assert out["removed"] == 7 and out["playid_raised"] == 1
    assert redis_db.lrange(f"T_endlist_{DAY}", 0, -1) == ["1000001_late"]
    assert redis_db.hget("vid_playid", "1000001") == "5"
    redis_db.hset("vid_playid", "1000001", 50)
    again = cleanup(root, redis_db, DAY)            # idempotent, and never lowers
    assert again["removed"] == 0 and redis_db.hget("vid_playid", "1000001") == "50"
    assert redis_db.lrange(f"T_endlist_{DAY}", 0, -1) == ["1000001_late"]


def test_cleanup_refuses_without_a_passing_verify_of_the_current_ingest(redis_db, mysql_db, tmp_path):
    """Run alone (``airflow tasks test ... cleanup D``), cleanup checks the day's report itself."""
    categories(mysql_db, [], [])
    for i in range(3):
        put_play(redis_db, DAY, f"1000001_{i}")
    root = DataRoot(str(tmp_path / "r"))
    hook = mysql_hook(mysql_db)
    ingest_plays(root, redis_db, hook, DAY)
    with pytest.raises(CleanupRefused, match="no verification report"):
        cleanup(root, redis_db, DAY)
    write_report(root, parse_ymd(DAY), {"plays": [check("traffic_equals_flow", False, "")]})
    with pytest.raises(CleanupRefused, match="failed"):
        cleanup(root, redis_db, DAY)
    write_report(root, parse_ymd(DAY), {"plays": [check("traffic_equals_flow", True, "")]})
    ingest_plays(root, redis_db, hook, DAY)  # a newer ingest: the report vouches for the old one
    with pytest.raises(CleanupRefused, match="not the current one"):
        cleanup(root, redis_db, DAY)
    assert redis_db.llen(f"T_endlist_{DAY}") == 3  # nothing was removed
    write_report(root, parse_ymd(DAY), {"plays": [check("traffic_equals_flow", True, "")]})
    assert cleanup(root, redis_db, DAY)["removed"] == 3
