"""Categories (cache, batched MySQL, nokid) and play-id continuation (CONTRACT §2)."""

from __future__ import annotations

from include.plays.documents import all_documents
from include.plays.ingest_plays import ingest_plays
from include.plays.legacy_import import new_site
from include.plays.rollup_videos import rollup_videos
from include.storage import DataRoot
from tests.support.plays import CountingHook, categories, mysql_hook, put_play, run_day

DAY = "20140107"


def test_kid_cache_then_one_mysql_query_per_batch(redis_db, mysql_db, tmp_path):
    categories(mysql_db, [("1000001", 1), ("1000002", 2), ("1000003", 9)], [(1, "music"), (2, None)])
    redis_db.hset("T_video_kid_info", "1000004", "news")
    for vid in ("1000001", "1000002", "1000003", "1000004", "1000005"):
        for i in range(3):
            put_play(redis_db, DAY, f"{vid}_{i}")
    hook = CountingHook(mysql_hook(mysql_db))
    root = DataRoot(str(tmp_path / "r"))
    ing = ingest_plays(root, redis_db, hook, DAY)
    assert ing["kid_cache_hits"] == 1 and ing["kid_mysql_lookups"] == 4 and len(hook.calls) == 1
    sql, params = hook.calls[0]
    assert sorted(params) == ["1000001", "1000002", "1000003", "1000005"] and sql.count("%s") == 4
    assert "1000001" not in sql  # values only as parameters
    assert redis_db.hgetall("T_video_kid_info") == {
        "1000001": "music", "1000002": "nokid",  # NULL kid
        "1000003": "nokid",  # vsort row missing
        "1000004": "news", "1000005": "nokid"}  # no vinfo row
    rollup_videos(root, DAY)
    docs = all_documents(root)
    assert set(docs["1000_type"][DAY]) == {"music", "news"}
    # a second day hits the cache only
    day2 = "20140108"
    for vid in ("1000001", "1000005"):
        put_play(redis_db, day2, f"{vid}_x")
    hook2 = CountingHook(mysql_hook(mysql_db))
    ing2 = ingest_plays(root, redis_db, hook2, day2)
    assert ing2["kid_cache_hits"] == 2 and ing2["kid_mysql_lookups"] == 0 and hook2.calls == []


def test_many_misses_are_batched(redis_db, mysql_db, tmp_path):
    categories(mysql_db, [(f"1{i:06d}", 1) for i in range(2500)], [(1, "k")])
    for i in range(2500):
        put_play(redis_db, DAY, f"1{i:06d}_0")
    hook = CountingHook(mysql_hook(mysql_db))
    ing = ingest_plays(DataRoot(str(tmp_path / "r")), redis_db, hook, DAY)
    assert ing["kid_mysql_lookups"] == 2500 and len(hook.calls) == 3  # 1,000 per query
    assert ing["redis_round_trips"] < 15


def test_play_ids_continue_from_redis_stat_or_zero(redis_db, mysql_db, mongo, tmp_path):
    categories(mysql_db, [], [])
    redis_db.hset("vid_playid", "1000001", 41)           # from Redis
    mongo["1000_stat"].insert_one({"_id": "1000002", "PlayID": 7, "Foreign": 1})  # from the stat document
    for vid in ("1000001", "1000002", "1000003"):       # 1000003: from nothing
        for i in range(2):
            put_play(redis_db, DAY, f"{vid}_{i}")
    root = DataRoot(str(tmp_path / "r"))
    new_site(root)  # the stat document is not a legacy job's totals (CONTRACT §7): publish without a baseline
    out = run_day(root, redis_db, mysql_hook(mysql_db), DAY, mongo_db=mongo)
    ids = {r["key"]: r["playid"] for r in root.read_table("plays", DAY, "allocation.parquet").to_pylist()}
    assert ids == {"1000001_0": 42, "1000001_1": 43, "1000002_0": 8, "1000002_1": 9, "1000003_0": 1,
                   "1000003_1": 2}
    assert out["ingest"]["playid_from_redis"] == 1 and out["ingest"]["playid_from_stat"] == 1
    assert redis_db.hgetall("vid_playid") == {"1000001": "43", "1000002": "9", "1000003": "2"}
    stat = mongo["1000_stat"].find_one({"_id": "1000002"})
    assert stat["PlayID"] == 9 and stat["Foreign"] == 1
    assert mongo["1000001_play"].find_one({"_id": 42})["Date"] == DAY


def test_play_ids_continue_from_the_data_root_without_redis_or_mongo(redis_db, mysql_db, tmp_path):
    categories(mysql_db, [], [])
    root = DataRoot(str(tmp_path / "r"))
    put_play(redis_db, DAY, "1000001_a")
    put_play(redis_db, DAY, "1000001_b")
    run_day(root, redis_db, mysql_hook(mysql_db), DAY)
    redis_db.delete("vid_playid")  # e.g. a Redis without history
    put_play(redis_db, "20140108", "1000001_c")
    ing = ingest_plays(root, redis_db, mysql_hook(mysql_db), "20140108")
    assert ing["playid_from_root"] == 1
    assert root.read_table("plays", "20140108", "allocation.parquet").to_pylist()[0]["playid"] == 3
