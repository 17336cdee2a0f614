"""``legacy-import`` (CONTRACT §7): safe to repeat, safe to fail, streamed in bounded batches; and the
publish guard for a legacy MongoDB without a baseline."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from include.cli import main
from include.plays import legacy_dump, legacy_stage
from include.plays.baseline import BaselineExists, CountedDay, NoBaseline, baseline_state
from include.plays.documents import all_documents
from include.plays.ingest_plays import ingest_plays
from include.plays.legacy_import import import_dump, new_site
from include.plays.publish import publish
from include.plays.rollup_videos import rollup_videos
from include.plays.totals import head_state, load_state, read_registry
from include.plays.verify import verify_history
from include.storage import DataRoot
from tests.support.mongoexport import synthetic_dump
from tests.support.plays import categories, mysql_hook, put_play, run_day
from video_analytics import totals as tot

BIN = Path(sys.prefix) / "bin" / "video-analytics"
LAST = "20140131"
VID = {"_id": "1000001", "Traffic": 301.5, "EngageSum": 1.5, "Load": 10, "Play": 3, "IP": 2, "PlayID": 3,
       "Geo": {"Guangdong": {"ClickNum": 3, "Traffic": 301.5, "EngageSum": 1.5, "Load": 4}},
       "HeatMapSum": {"1": 3, "2": 3, "10": 1}, "PlayMapSum": {"1": 3, "2": 3, "10": 1}, "Click": 0.3,
       "Engage": 0.5, "Htmap": "[[0,4,3],[18,20,1]]", "Ptmap": "[[0,4,3],[18,20,1]]", "Title": "foreign"}
UID = {"_id": "1000", "Traffic": 301.5, "EngageSum": 1.5, "Load": 10, "Play": 3, "IP": 2, "Mtraffic": 120.25,
       "Geo": {"Guangdong": {"ClickNum": 3, "Traffic": 301.5, "EngageSum": 1.5, "Load": 0}}}


def _dump(d: Path, vid_line: str | None = None, last: str = LAST, vid=VID) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(UID), vid_line or json.dumps(vid)]
    (d / "1000_stat.json").write_text("\n".join(lines) + "\n")
    (d / "1000_vdaily.json").write_text(json.dumps({"_id": "20140130"}) + "\n" + json.dumps({"_id": last}) + "\n")
    (d / "1000001_play.json").write_text('{"_id":1,"Date":"20140130"}\n')  # not the totals': skipped
    return d


def _tree(path: Path) -> dict[str, str]:
    """Every file under ``path`` and a hash of its bytes."""
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*"))
            if p.is_file()}


def test_same_dump_again_changes_nothing_and_a_different_one_needs_replace(tmp_path):
    root_dir = tmp_path / "root"
    root = DataRoot(str(root_dir))
    first = import_dump(root, str(_dump(tmp_path / "a")))
    assert first["status"] == "imported" and first["last_day"] == LAST
    assert first["rows"] == {"vid": 1, "vid_region": 1, "vid_seg": 3, "uid": 1, "uid_region": 1, "month": 1}
    state = baseline_state(root, read_registry(root))
    assert state["vid_seg"]["seg"].tolist() == [1, 2, 10] and tot.month_traffic(state) == {"1000": 120.25}
    tree = _tree(root_dir)
    assert import_dump(root, str(_dump(tmp_path / "b")))["status"] == "unchanged"
    assert _tree(root_dir) == tree
    other = _dump(tmp_path / "c", vid={**VID, "Traffic": 401.5})
    with pytest.raises(BaselineExists, match="already has a different baseline .*pass --replace"):
        import_dump(root, str(other))
    with pytest.raises(BaselineExists):
        new_site(root)
    assert _tree(root_dir) == tree
    replaced = import_dump(root, str(other), replace=True)
    assert replaced["status"] == "replaced" and replaced["dir"] != first["dir"]
    docs = all_documents(root)
    assert docs["1000_stat"]["1000001"]["Traffic"] == 401.5 and docs["1000_stat"]["1000001"]["Htmap"] == VID["Htmap"]
    assert len(list((root_dir / "totals" / "baseline").iterdir())) == 1  # the replaced one is gone


def test_replace_after_days_refolds_them_and_never_covers_a_processed_day(redis_db, mysql_db, tmp_path):
    categories(mysql_db, [], [])
    root = DataRoot(str(tmp_path / "root"))
    import_dump(root, str(_dump(tmp_path / "a")))
    for day in ("20140201", "20140202"):
        put_play(redis_db, day, f"1000001_{day}")
        run_day(root, redis_db, mysql_hook(mysql_db), day)
    before = all_documents(root)["1000_stat"]
    assert before["1000001"]["PlayID"] == 5 and before["1000001"]["Traffic"] == 301.5 + 2 * 100.5
    assert before["1000"]["Mtraffic"] == 2 * 100.5  # a new month: the baseline's Mtraffic does not carry on
    import_dump(root, str(_dump(tmp_path / "b", vid={**VID, "Traffic": 1000.0})), replace=True)
    after = all_documents(root)["1000_stat"]
    assert after["1000001"]["Traffic"] == 1000.0 + 2 * 100.5 and after["1000001"]["PlayID"] == 5
    assert [c for c in verify_history(root) if not c["ok"]] == []
    tree = _tree(tmp_path / "root")
    with pytest.raises(CountedDay, match="already processed 20140201"):
        import_dump(root, str(_dump(tmp_path / "c", last="20140201")), replace=True)
    assert _tree(tmp_path / "root") == tree


MALFORMED = {
    "operator": ('{"_id":"1000001","Traffic":1.5,"$inc":{"Play":1}}', "field $inc: an operator"),
    "dotted": ('{"_id":"1000001","Geo":{"Guang.dong":{"ClickNum":1}}}', "field Geo.Guang.dong: an operator, dotted"),
    "dotted_top": ('{"_id":"1000001","HeatMapSum.3":2}', "field HeatMapSum.3: an operator, dotted"),
    "nan": ('{"_id":"1000001","Traffic":{"$numberDouble":"NaN"}}', "field Traffic: a non-finite number"),
    "infinity": ('{"_id":"1000001","Geo":{"x":{"EngageSum":{"$numberDouble":"-Infinity"}}}}',
                 "field Geo.x.EngageSum: a non-finite number"),
    "string_for_int": ('{"_id":"1000001","Play":"3"}', "field Play: '3', not an integer"),
    "fraction_for_int": ('{"_id":"1000001","PlayID":2.5}', "field PlayID: 2.5, not an integer"),
    "bool": ('{"_id":"1000001","Traffic":true}', "field Traffic: True, not a number"),
    "list_for_doc": ('{"_id":"1000001","Geo":[1,2]}', "field Geo: a list, not a document"),
    "date": ('{"_id":"1000001","Load":{"$date":"2014-01-01T00:00:00Z"}}', "field Load: a datetime, not an integer"),
    "segment_zero": ('{"_id":"1000001","HeatMapSum":{"0":1},"PlayMapSum":{"0":1}}',
                     "field HeatMapSum.0: not a positive segment number"),
    "segment_name": ('{"_id":"1000001","HeatMapSum":{"x1":1},"PlayMapSum":{"x1":1}}',
                     "field HeatMapSum.x1: not a positive segment number"),
    "segment_padded": ('{"_id":"1000001","HeatMapSum":{"01":1},"PlayMapSum":{"01":1}}',
                       "field HeatMapSum.01: not a positive segment number"),
    "segment_negative": ('{"_id":"1000001","HeatMapSum":{"-2":1},"PlayMapSum":{"-2":1}}',
                         "field HeatMapSum.-2: not a positive segment number"),
    "wrong_id": ('{"_id":"2000001"}', "field _id: '2000001' is neither the uid"),
    "duplicate": (json.dumps(UID), "field _id: the uid '1000' again (first at "),
    "not_json": ('{"_id":"1000001",', "not a JSON document"),
}


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_a_malformed_document_refuses_the_dump_with_one_line(tmp_path, capfd, kind):
    line, why = MALFORMED[kind]
    dump = _dump(tmp_path / "dump", vid_line=line)
    root_dir = tmp_path / "root"
    rc = main(["legacy-import", "--dump", str(dump), "--data-root", str(root_dir)])
    err = capfd.readouterr().err.strip().splitlines()
    assert rc == 1 and len(err) == 1, err
    assert err[0].startswith(f"video-analytics legacy-import: error: {dump / '1000_stat.json'}:2: "), err[0]
    assert why in err[0], err[0]
    assert _tree(root_dir) == {}


def test_a_malformed_vdaily_id_and_an_empty_dump_are_refused(tmp_path):
    dump = _dump(tmp_path / "dump")
    (dump / "1000_vdaily.json").write_text('{"_id":"20140230"}\n')
    with pytest.raises(legacy_dump.Refused, match=r"1000_vdaily.json:1: field _id: '20140230' is not a date"):
        import_dump(DataRoot(str(tmp_path / "root")), str(dump))
    (dump / "1000_stat.json").unlink()
    (dump / "1000_vdaily.json").write_text('{"_id":"20140131"}\n')
    with pytest.raises(legacy_dump.Refused, match="no <uid>_stat documents"):
        import_dump(DataRoot(str(tmp_path / "root")), str(dump))
    assert not (tmp_path / "root").exists()


def test_batches_of_any_size_give_the_same_sorted_baseline(tmp_path, monkeypatch):
    synthetic_dump(tmp_path / "dump", vids=700, vids_per_uid=300, segments=12)
    with open(tmp_path / "dump" / "0001_stat.json", "a") as fh:  # videos without segments or regions
        fh.write('{"_id":"0001zz0"}\n{"_id":"0001zz1","Geo":{}}\n')
    a, b = DataRoot(str(tmp_path / "a")), DataRoot(str(tmp_path / "b"))
    big = import_dump(a, str(tmp_path / "dump"))
    monkeypatch.setattr(legacy_stage, "FLUSH_ROWS", 7)  # many spill batches and take chunks per collection,
    monkeypatch.setattr(legacy_stage, "BUCKET_ROWS", 50)  # and spills split into buckets of vids
    small = import_dump(b, str(tmp_path / "dump"))
    assert small["fingerprint"] == big["fingerprint"] and small["rows"]["vid"] == 702
    sa, sb = baseline_state(a, read_registry(a)), baseline_state(b, read_registry(b))
    assert tot.equal_states(sa, sb) == []
    # sorted by key, as the fold keeps its states
    for kind in tot.STATE_KINDS:
        keys = tot.TABLES[kind][0] if kind in tot.TABLES else ["uid"]
        df = sa[kind]
        assert df.equals(df.sort_values(keys, kind="stable").reset_index(drop=True)), kind
    heat = sa["vid_seg"].groupby("vid")["heat"].sum()
    lines = [json.loads(x) for f in sorted((tmp_path / "dump").glob("*_stat.json")) for x in f.read_text().splitlines()]
    want = pd.Series({d["_id"]: sum(d["HeatMapSum"].values()) for d in lines if d.get("HeatMapSum")})
    assert heat.sort_index().equals(want.sort_index())


def _open_writer(fifo: str, proc) -> int:
    """The FIFO's write end, once the import opened it for reading (or fail if the import ended)."""
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the import ended before reading the dump: {proc.stderr.read()}")
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            time.sleep(0.02)
            continue
        os.set_blocking(fd, True)
        return fd


def test_a_kill_during_the_import_leaves_the_data_root_as_it_was(redis_db, tmp_path):
    db = redis_db.connection_pool.connection_kwargs["db"]
    env = {**os.environ, "AIRFLOW_CONN_VIDEO_REDIS": f"redis://127.0.0.1:6379/{db}"}
    env.pop("AIRFLOW_CONN_VIDEO_MONGO", None)
    root_dir = tmp_path / "root"
    import_dump(DataRoot(str(root_dir)), str(_dump(tmp_path / "a")))
    tree = _tree(root_dir)
    dump = tmp_path / "big"
    synthetic_dump(dump, vids=3000, vids_per_uid=3000, segments=30)
    body = (dump / "0000_stat.json").read_bytes()
    (dump / "0000_stat.json").unlink()
    os.mkfifo(dump / "0000_stat.json")
    proc = subprocess.Popen([str(BIN), "legacy-import", "--dump", str(dump), "--data-root", str(root_dir),
                             "--replace", "--tmp", str(tmp_path)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        fd = _open_writer(str(dump / "0000_stat.json"), proc)
        os.write(fd, body[: len(body) // 2])  # returns once the import has read all but a pipe buffer of it
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        os.close(fd)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert _tree(root_dir) == tree
    assert import_dump(DataRoot(str(root_dir)), str(_dump(tmp_path / "again")))["status"] == "unchanged"


def test_publish_refuses_a_legacy_mongodb_until_a_baseline_or_new_site(redis_db, mysql_db, mongo, tmp_path):
    categories(mysql_db, [], [])
    mongo["1000_stat"].insert_one(dict(VID))  # the legacy job's all-time totals
    put_play(redis_db, "20140201", "1000001_a")
    root = DataRoot(str(tmp_path / "root"))
    ingest_plays(root, redis_db, mysql_hook(mysql_db), "20140201")
    rollup_videos(root, "20140201", redis_db)
    with pytest.raises(NoBaseline, match=r"already holds 1000_stat documents, and the data root .* has no "
                                         r"baseline: import the legacy job's totals first with `video-analytics "
                                         r"legacy-import"):
        publish(root, "20140201", mongo, redis_db)
    assert sorted(mongo.list_collection_names()) == ["1000_stat"] and mongo["1000_stat"].find_one() == VID
    new_site(root)  # an explicit setting: this site starts without legacy totals
    assert publish(root, "20140201", mongo, redis_db)["upserts"] > 0
    state, _ = head_state(root)
    assert state["vid"]["Traffic"].tolist() == [100.5]


def test_days_on_a_baseline_in_any_order_are_bit_identical_to_in_order(redis_db, mysql_db, tmp_path):
    from tests.integration.test_plays_totals import _restore, _snapshot_redis

    categories(mysql_db, [], [])
    synthetic_dump(tmp_path / "dump", vids=40, vids_per_uid=40, segments=8, last_day="20140130")
    days = ["20140131", "20140201", "20140202"]
    for i, day in enumerate(days):
        for k in range(1, 5):  # videos of the baseline, and one that is new
            put_play(redis_db, day, f"000000{k}_{i}", j=((k, i + 1), (k + 1, 1)))
        put_play(redis_db, day, f"0000999_{i}")
    snap = _snapshot_redis(redis_db)
    hook = mysql_hook(mysql_db)
    a, b = DataRoot(str(tmp_path / "a")), DataRoot(str(tmp_path / "b"))
    import_dump(a, str(tmp_path / "dump"))
    for day in days:
        run_day(a, redis_db, hook, day)
    _restore(redis_db, snap)
    import_dump(b, str(tmp_path / "dump"))
    for day in [days[2], days[0], days[1], days[2]]:
        out = run_day(b, redis_db, hook, day)
        assert all(c["ok"] for c in out["verify"]), out["verify"]
    ra, rb = read_registry(a), read_registry(b)
    assert sorted(ra["snapshots"]) == sorted(rb["snapshots"]) == ["20140131", "20140201", "20140202"]
    assert tot.equal_states(head_state(a)[0], head_state(b)[0]) == []
    for root in (a, b):
        assert [c for c in verify_history(root) if not c["ok"]] == []
    # Mtraffic carries on from the baseline within January, and restarts in February
    base = tot.month_traffic(baseline_state(a, ra))["0000"]
    jan = tot.month_traffic(load_state(a, ra["snapshots"]["20140131"]))["0000"]
    assert jan == base + 5 * 100.5 and tot.month_traffic(head_state(a)[0])["0000"] == 2 * 5 * 100.5
    vid = all_documents(a)["0000_stat"]["0000001"]
    was = baseline_state(a, ra)["vid"].set_index("vid").loc["0000001"]
    assert vid["Traffic"] == was["Traffic"] + 3 * 100.5 and vid["Play"] == was["Play"]  # no T_playtable here
    assert vid["PlayID"] == was["PlayID"] + 3


def test_legacy_import_mongo_without_the_connection_says_so(tmp_path, capfd, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_VIDEO_MONGO", raising=False)
    rc = main(["legacy-import", "--mongo", "--data-root", str(tmp_path / "root")])
    err = capfd.readouterr().err.strip().splitlines()
    assert rc == 1 and err == ["video-analytics legacy-import: error: legacy-import --mongo: connection "
                               "'video_mongo' is not defined"]


def test_a_malformed_document_in_the_live_database_is_named_by_collection_and_id(mongo, tmp_path):
    from include.plays.legacy_import import import_mongo

    mongo["1000_vdaily"].insert_one({"_id": LAST})
    mongo["1000_stat"].insert_many([dict(UID), {**VID, "Geo": {"Guangdong": {"Traffic": "a lot"}}}])
    with pytest.raises(legacy_dump.Refused, match=r"^video_mongo video.1000_stat _id '1000001': field "
                                                  r"Geo.Guangdong.Traffic: 'a lot', not a number$"):
        import_mongo(DataRoot(str(tmp_path / "root")), mongo)
    assert not (tmp_path / "root").exists()
    mongo["1000_stat"].update_one({"_id": "1000001"}, {"$set": {"Geo": VID["Geo"]}})
    assert import_mongo(DataRoot(str(tmp_path / "root")), mongo)["rows"]["vid_seg"] == 3
