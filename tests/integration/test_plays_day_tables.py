"""Day tables are never replaced by nothing (CONTRACT §2, §4; issue 21): a re-run takes, entry by entry,
the value Redis has now, else the stored snapshot's; ``verify`` reports the entries taken from the snapshot."""

from __future__ import annotations

from include.plays.documents import all_documents
from include.sample_plays import generate_plays
from include.storage import DataRoot
from tests.support.plays import categories, doc_mismatches, mysql_hook, run_day
from video_analytics.conventions import TABLE_KEYS, endlist_key, plays_path, table_key

DAY = "20140107"


def _tables(root: DataRoot) -> dict[tuple[str, str], str]:
    t = root.read_table(plays_path(DAY, "snapshot", "tables.parquet")).to_pylist()
    return {(r["table"], r["field"]): r["value"] for r in t}


def _first_run(redis_db, mysql_db, tmp_path, mongo=None):
    hook = mysql_hook(mysql_db)
    categories(mysql_db, [], [])
    generate_plays(redis_db, hook, DAY, plays=300, seed=8)
    root = DataRoot(str(tmp_path / "r"))
    first = run_day(root, redis_db, hook, DAY, mongo_db=mongo)
    assert all(c["ok"] for c in first["verify"])
    return root, hook


def _check(out: dict, name: str) -> dict:
    return next(c for c in out["verify"] if c["name"] == name)


def test_deleted_day_tables_are_taken_from_the_snapshot(redis_db, mysql_db, mongo, tmp_path):
    root, hook = _first_run(redis_db, mysql_db, tmp_path, mongo)
    docs, tables = all_documents(root), _tables(root)
    redis_db.delete(*(table_key(t, DAY) for t in TABLE_KEYS))
    again = run_day(root, redis_db, hook, DAY, mongo_db=mongo)
    assert _tables(root) == tables
    assert doc_mismatches(docs, all_documents(root)) == []
    assert all(c["ok"] for c in again["verify"]), again["verify"]
    kept = _check(again, "day_tables_from_snapshot")["detail"]
    assert kept["entries"] == len(tables)
    assert {t: v["entries"] for t, v in kept["tables"].items()} == {
        t: sum(1 for (tt, _) in tables if tt == t) for t in TABLE_KEYS}


def test_verify_reports_no_snapshot_entries_when_redis_has_them(redis_db, mysql_db, tmp_path):
    root, hook = _first_run(redis_db, mysql_db, tmp_path)
    again = run_day(root, redis_db, hook, DAY)
    assert _check(again, "day_tables_from_snapshot")["detail"]["entries"] == 0


def test_redis_values_win_entry_by_entry(redis_db, mysql_db, tmp_path):
    root, hook = _first_run(redis_db, mysql_db, tmp_path)
    tables = _tables(root)
    load = table_key("load", DAY)
    gone, changed = sorted(redis_db.hkeys(load))[:2]
    redis_db.hdel(load, gone)
    redis_db.hset(load, changed, "999999")
    rep = run_day(root, redis_db, hook, DAY)
    now = _tables(root)
    assert now[("load", gone)] == tables[("load", gone)] and now[("load", changed)] == "999999"
    assert set(now) == set(tables)
    kept = _check(rep, "day_tables_from_snapshot")["detail"]
    assert kept["entries"] == 1 and kept["tables"] == {"load": {"entries": 1, "fields": [gone]}}
    vid_doc = all_documents(root)[f"{gone[:4]}_vdaily"][DAY][gone]
    assert vid_doc["Load"] == int(tables[("load", gone)])


def test_a_redis_that_lost_the_day_keeps_every_document(redis_db, mysql_db, tmp_path):
    """The list and the tables gone (a Redis restart): the day is processed from its snapshot, unchanged."""
    root, hook = _first_run(redis_db, mysql_db, tmp_path)
    docs, tables = all_documents(root), _tables(root)
    redis_db.delete(endlist_key(DAY), *(table_key(t, DAY) for t in TABLE_KEYS))
    again = run_day(root, redis_db, hook, DAY)
    assert _tables(root) == tables
    assert doc_mismatches(docs, all_documents(root)) == []
    assert all(c["ok"] for c in again["verify"])


def test_day_tables_alongside_pass1_or_after_it_agree(redis_db, mysql_db, tmp_path, monkeypatch):
    """A day of up to ``SMALL_DAY_PLAYS`` plays reads its tables in a thread during pass 1, a bigger one after
    it: the same tables, and a re-run without them in Redis keeps them."""
    from include.plays import ingest_plays as ip

    hook = mysql_hook(mysql_db)
    categories(mysql_db, [], [])
    generate_plays(redis_db, hook, DAY, plays=300, seed=8)
    got, real = {}, ip.pass1
    for name, limit in (("alongside", ip.SMALL_DAY_PLAYS), ("after", 0)):
        monkeypatch.setattr(ip, "SMALL_DAY_PLAYS", limit)
        calls = []
        monkeypatch.setattr(ip, "pass1", lambda run, quar, calls=calls: calls.append(1) or real(run, quar))
        root = DataRoot(str(tmp_path / name))
        first = run_day(root, redis_db, hook, DAY)
        assert calls == [1] and all(c["ok"] for c in first["verify"])
        got[name] = _tables(root)
    assert got["alongside"] == got["after"] and got["after"]
    redis_db.delete(*(table_key(t, DAY) for t in TABLE_KEYS))
    again = run_day(DataRoot(str(tmp_path / "after")), redis_db, hook, DAY)
    assert _tables(DataRoot(str(tmp_path / "after"))) == got["after"]
    assert _check(again, "day_tables_from_snapshot")["detail"]["entries"] == len(got["after"])
