"""Running totals at a cost independent of history (include/plays/totals.py): kept snapshots, bit-identical
totals whatever the order of days, publish of changed documents only, verify against the state before
the day and the full `verify --all`."""

from __future__ import annotations

import threading

import mongomock
import pyarrow as pa
import pytest

from include.plays import rollup_videos as rv
from include.plays import totals
from include.plays.documents import all_documents
from include.plays.ingest_plays import ingest_plays
from include.plays.publish import publish
from include.plays.totals import REGISTRY, read_registry
from include.plays.verify import verify_history, verify_plays
from include.sample_plays import generate_plays
from include.storage import DataRoot
from tests.support.plays import mysql_hook, put_play, run_day
from video_analytics.conventions import totals_path

# two months: a re-run in March starts from the February checkpoint
DAYS = ["20140227", "20140228", "20140301", "20140302", "20140303"]


def _snapshot_redis(r):
    return {k: r.dump(k) for k in r.keys("*")}


def _restore(r, snap):
    r.flushdb()
    for k, v in snap.items():
        r.restore(k, 0, v)


def _stats(docs):
    return {c: d for c, d in docs.items() if c.endswith("_stat")}


def _dirs(root):
    return sorted(p.rstrip("/").split("/")[-1] for p in root.glob(totals_path("snapshots", "*")))


def test_any_order_gives_bit_identical_totals_and_only_kept_snapshots(redis_db, mysql_db, tmp_path):
    hook = mysql_hook(mysql_db)
    for d in DAYS:
        generate_plays(redis_db, hook, d, plays=300, seed=int(d[-2:]))
    snap = _snapshot_redis(redis_db)
    in_order = DataRoot(str(tmp_path / "a"))
    for d in DAYS:
        run_day(in_order, redis_db, hook, d)
    reg = read_registry(in_order)
    assert sorted(reg["snapshots"]) == ["20140228", "20140302", "20140303"]
    assert _dirs(in_order) == sorted(reg["snapshots"].values())  # the others were removed

    _restore(redis_db, snap)
    shuffled = DataRoot(str(tmp_path / "b"))
    folds = {}
    for d in ["20140302", "20140227", "20140303", "20140301", "20140228", "20140302"]:
        out = run_day(shuffled, redis_db, hook, d)
        assert all(c["ok"] for c in out["verify"]), out["verify"]
        folds[d] = out["rollup"]["totals"]
    # the last re-run of 20140302 (not the latest day) started from the February checkpoint
    assert folds["20140302"]["start"] == "20140228"
    assert folds["20140302"]["days_folded"] == ["20140301", "20140302", "20140303"]
    assert _stats(all_documents(in_order)) == _stats(all_documents(shuffled))  # exactly, not within 1e-9
    assert sorted(read_registry(shuffled)["snapshots"]) == ["20140228", "20140302", "20140303"]
    assert all(c["ok"] for c in verify_history(shuffled, redis=redis_db))

    # re-running the latest day starts from the day before it and folds that day only
    again = run_day(in_order, redis_db, hook, DAYS[-1])
    assert again["rollup"]["totals"]["start"] == DAYS[-2]
    assert again["rollup"]["totals"]["days_folded"] == [DAYS[-1]]


def test_publish_sends_only_what_changed(redis_db, mysql_db, mongo, tmp_path):
    hook = mysql_hook(mysql_db)
    generate_plays(redis_db, hook, DAYS[0], plays=200, seed=3)
    root, db = DataRoot(str(tmp_path / "r")), mongo
    first = run_day(root, redis_db, hook, DAYS[0], mongo_db=db)
    assert first["publish"]["upserts"] == first["publish"]["documents"] > 0

    again = run_day(root, redis_db, hook, DAYS[0], mongo_db=db)
    assert again["publish"]["upserts"] == 0 and again["publish"]["bulk_calls"] == 0
    assert again["publish"]["unchanged"] == first["publish"]["documents"]
    assert all(c["ok"] for c in again["verify"])

    put_play(redis_db, DAYS[0], "1000001_late")  # one late play of one vid: only what it touches is sent
    late = run_day(root, redis_db, hook, DAYS[0], mongo_db=db)
    colls = {"1000001_play", "1000_vdaily", "1000_daily", "1000_stat"}
    assert 0 < late["publish"]["upserts"] <= 6, late["publish"]
    assert late["publish"]["collections"] <= len(colls) + 1  # + the type document when 1000001 has a kid
    assert all(c["ok"] for c in late["verify"]), late["verify"]

    fresh = mongomock.MongoClient().video  # another MongoDB: nothing is recorded for it, all is sent
    out = publish(root, DAYS[0], fresh, redis_db)
    assert out["upserts"] == out["documents"] == late["publish"]["documents"]
    assert publish(root, DAYS[0], db, redis_db, force=True)["upserts"] == out["documents"]


def test_verify_checks_the_day_and_verify_all_catches_an_old_day_tampered_with(redis_db, mysql_db, tmp_path):
    hook = mysql_hook(mysql_db)
    for d in DAYS:
        generate_plays(redis_db, hook, d, plays=200, seed=int(d[-2:]))
    root = DataRoot(str(tmp_path / "r"))
    for d in DAYS:
        run_day(root, redis_db, hook, d)
    assert all(c["ok"] for c in verify_history(root, redis=redis_db))

    old = DAYS[1]
    t = root.read_table("plays", old, "contrib", "vid.parquet")
    traffic = t.column("Traffic").to_pylist()
    traffic[0] += 1.0
    root.write_table(t.set_column(t.schema.get_field_index("Traffic"), "Traffic", pa.array(traffic)),
                     "plays", old, "contrib", "vid.parquet")
    # the latest day's check looks at the latest day only: it still passes...
    assert all(c["ok"] for c in verify_plays(root, DAYS[-1], redis=redis_db))
    # ...the full check does not
    bad = {c["name"] for c in verify_history(root, redis=redis_db) if not c["ok"]}
    assert bad == {"contributions_match_plays", "totals_refold_from_first_day"}

    root2 = DataRoot(str(tmp_path / "r2"))  # a stored snapshot edited: the refold catches it too
    reg = read_registry(root)
    name = reg["snapshots"]["20140228"]
    v = root.read_table(totals_path("snapshots", name, "vid_seg.parquet"))
    root.write_table(v.slice(1), totals_path("snapshots", name, "vid_seg.parquet"))
    bad = {c["name"] for c in verify_history(root, redis=redis_db) if not c["ok"]}
    assert "totals_refold_from_first_day" in bad
    assert not root2.exists(REGISTRY)


def test_a_day_rolled_up_again_without_its_fold_is_reported(redis_db, mysql_db, tmp_path):
    hook = mysql_hook(mysql_db)
    generate_plays(redis_db, hook, DAYS[0], plays=100, seed=5)
    root = DataRoot(str(tmp_path / "r"))
    run_day(root, redis_db, hook, DAYS[0])
    rep = root.read_json("plays", DAYS[0], "rollup.json")
    rep["rollup_id"] = "not-the-folded-one"
    root.write_json(rep, "plays", DAYS[0], "rollup.json")
    day = {c["name"]: c for c in verify_plays(root, DAYS[0], redis=redis_db)}
    assert not day["running_totals_moved_by_day"]["ok"]
    assert not {c["name"]: c for c in verify_history(root, redis=redis_db)}["every_done_day_folded"]["ok"]


def test_a_hostile_publish_token_is_refused(redis_db, mysql_db, mongo, tmp_path):
    import pytest

    from include.mongo import PUBLISH_MARKER, target_token

    assert len(target_token(mongo)) == 16 and target_token(mongo) == target_token(mongo)
    for bad in ("../../etc", {"$gt": ""}, "ABCDEF0123456789", None):
        mongo[PUBLISH_MARKER].replace_one({"_id": "target"}, {"token": bad})
        with pytest.raises(ValueError, match="malformed publish token"):
            target_token(mongo)


def test_the_segment_fold_runs_during_the_day_and_a_failed_day_leaves_no_snapshot(redis_db, mysql_db, tmp_path,
                                                                                   monkeypatch):
    """``rollup_videos`` folds ``vid_seg`` in a thread while ``rollup_day`` makes the other contributions; when
    either fails, the new snapshots are removed and the registry is untouched; a retry folds as one run would."""
    hook = mysql_hook(mysql_db)
    for d in DAYS[:2]:
        generate_plays(redis_db, hook, d, plays=200, seed=int(d[-2:]))
    root = DataRoot(str(tmp_path / "r"))
    run_day(root, redis_db, hook, DAYS[0])
    before, dirs = read_registry(root), _dirs(root)
    ingest_plays(root, redis_db, hook, DAYS[1])
    folded, real_day, real_segments = threading.Event(), rv.rollup_day, totals.DayFold.segments

    def segments(self):
        real_segments(self)
        folded.set()

    def day_waits_for_the_fold(*a, **k):
        assert folded.wait(30), "the vid_seg fold did not run while the day was made"
        return real_day(*a, **k)

    monkeypatch.setattr(totals.DayFold, "segments", segments)
    monkeypatch.setattr(rv, "rollup_day", day_waits_for_the_fold)
    for broken, where in ((rv, "rollup_day"), (totals, "fold_segments"), (totals, "fold_tables")):
        with monkeypatch.context() as m:
            m.setattr(broken, where, lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
            with pytest.raises(OSError, match="disk full"):
                rv.rollup_videos(root, DAYS[1], redis_db)
        assert read_registry(root) == before and _dirs(root) == dirs, where
    folded.clear()
    out = rv.rollup_videos(root, DAYS[1], redis_db)  # the day waits for the fold: it must run alongside
    assert out["totals"]["start"] == DAYS[0] and out["totals"]["snapshots_written"] == [DAYS[1]]
    assert all(c["ok"] for c in verify_plays(root, DAYS[1], redis=redis_db))
