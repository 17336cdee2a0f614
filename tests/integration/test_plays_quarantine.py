"""Bad input (CONTRACT §5): every quarantine reason, field-name safety, duplicates, thresholds."""

from __future__ import annotations

import functools

import pyarrow.parquet as pq
import pytest

from include.plays.documents import all_documents
from include.plays.verify import verify_plays
from include.storage import DataRoot
from tests.support.plays import GOOD_S, categories, mysql_hook, put_play, run_day

DAY = "20140105"


def _s(**kw):
    s = dict(GOOD_S)
    for k, v in kw.items():
        if v is ...:
            del s[k]
        else:
            s[k] = v
    return s


CASES = {
    "1000001_missS": ({"s": None}, "missing_S"),
    "1000001_missJ": ({"j": None}, "missing_J"),
    "1000001_badS": ({"raw_s": '{"starttime": '}, "invalid_json_S"),
    "1000001_listS": ({"raw_s": "[1, 2]"}, "invalid_json_S"),
    "1000001_badJ": ({"raw_j": "[[1,1],"}, "invalid_json_J"),
    "1000001_shapeJ": ({"raw_j": '[[1,"a"]]'}, "bad_segments"),
    "1000001_noip": ({"s": _s(ip=...)}, "missing_field:ip"),
    "1000001_nullcity": ({"s": _s(city=None)}, "missing_field:city"),
    "1000001_flow": ({"s": _s(flow="lots")}, "non_numeric:flow"),
    "1000001_nan": ({"raw_s": '{"starttime":"t","country":"CN","region":"R","city":"c","ip":"i","os":"o",'
                              '"browser":"b","flow":NaN,"comprate":0.1}'}, "non_numeric:flow"),
    "1000001_comp": ({"s": _s(comprate=[1])}, "non_numeric:comprate"),
    "1000001_dotreg": ({"s": _s(region="He.bei")}, "bad_region"),
    "1000001_dolreg": ({"s": _s(region="$gt")}, "bad_region"),
    "1000001_empreg": ({"s": _s(region="")}, "bad_region"),
    "10.0001_x": ({}, "bad_vid"),
    "10$0001_x": ({}, "bad_vid"),
    "2000001_kid": ({}, "bad_kid"),
    "2000002_kid": ({}, "bad_kid"),
}


def test_every_reason_is_quarantined_and_counted_in_nothing(redis_db, mysql_db, tmp_path):
    categories(mysql_db, [("2000001", 1), ("2000002", 2), ("1000001", 3)], [(1, "a.b"), (2, "$x"), (3, "7")])
    for key, (kw, _) in CASES.items():
        put_play(redis_db, DAY, key, **kw)
    for i in range(4):
        put_play(redis_db, DAY, f"1000001_ok{i}", s=_s(region=7 if i == 0 else "Guangdong"), z1="ü/ü" if i else None)
    put_play(redis_db, DAY, "1000001_ok1", push=True)  # duplicate key
    root = DataRoot(str(tmp_path / "r"))
    out = run_day(root, redis_db, mysql_hook(mysql_db), DAY)
    ing = out["ingest"]
    assert (ing["unique"], ing["ingested"], ing["quarantined"], ing["duplicates"]) == (len(CASES) + 4, 4, len(CASES), 1)
    q = {r["key"]: r["reason"] for r in pq.read_table(ing["quarantine_path"]).to_pylist()}
    assert q == {k: why for k, (_, why) in CASES.items()}
    raw = {r["key"]: r for r in pq.read_table(ing["quarantine_path"]).to_pylist()}
    assert raw["1000001_badS"]["S"] == b'{"starttime": '  # kept raw
    checks = {c["name"]: c for c in out["verify"]}
    assert not checks["quarantine_rate"]["ok"]  # 18 of 22 plays: far past 1%
    assert all(c["ok"] for n, c in checks.items() if n != "quarantine_rate")
    assert checks["plays_accounted"]["detail"]["duplicates"] == 1
    docs = all_documents(root)
    vd = docs["1000_vdaily"][DAY]["1000001"]
    assert sum(g["ClickNum"] for g in vd["Geo"].values()) == 4
    assert set(vd["Geo"]) == {"Guangdong", "7"}  # a numeric region becomes its string
    assert not any(c.startswith("2000") for c in docs)
    assert set(docs["1000001_play"]) == {1, 2, 3, 4}  # quarantined plays take no id
    assert docs["1000001_play"][2]["zz_uinfo"] == '"\\u00fc\\/\\u00fc"'
    assert "zz_uinfo" not in docs["1000001_play"][1]
    assert docs["1000_type"][DAY]["7"]["Play"] == 0


def test_quarantine_threshold_is_a_parameter(redis_db, mysql_db, tmp_path):
    categories(mysql_db, [], [])
    for i in range(99):
        put_play(redis_db, DAY, f"1000001_{i}")
    put_play(redis_db, DAY, "1000001_bad", s=None)
    root = DataRoot(str(tmp_path / "r"))
    run_day(root, redis_db, mysql_hook(mysql_db), DAY)
    rate = {c["name"]: c for c in verify_plays(root, DAY)}["quarantine_rate"]
    assert rate["ok"] and rate["detail"]["rate"] == 0.01
    assert not {c["name"]: c for c in verify_plays(root, DAY, max_quarantine_rate=0.005)}["quarantine_rate"]["ok"]


def test_verify_fails_on_tampered_data_root(redis_db, mysql_db, tmp_path):
    import pyarrow as pa

    categories(mysql_db, [], [])
    for i in range(20):
        put_play(redis_db, DAY, f"100000{i % 2}_{i}")
    root = DataRoot(str(tmp_path / "r"))
    out = run_day(root, redis_db, mysql_hook(mysql_db), DAY)
    assert all(c["ok"] for c in out["verify"])
    t = root.read_table("plays", DAY, "contrib", "vid.parquet")
    traffic = t.column("Traffic").to_pylist()
    traffic[0] += 1.0
    root.write_table(t.set_column(t.schema.get_field_index("Traffic"), "Traffic", pa.array(traffic)),
                     "plays", DAY, "contrib", "vid.parquet")
    bad = {c["name"] for c in verify_plays(root, DAY) if not c["ok"]}
    assert {"traffic_equals_flow", "running_totals_moved_by_day"} <= bad
    p = root.read_table("plays", DAY, "plays.parquet")
    root.write_table(p.slice(1), "plays", DAY, "plays.parquet")
    bad = {c["name"] for c in verify_plays(root, DAY) if not c["ok"]}
    assert "plays_accounted" in bad


@pytest.mark.parametrize("limit", [0, 10**9])
def test_verify_runs_the_totals_alongside_the_day_only_up_to_the_limit(limit, redis_db, mysql_db, tmp_path,
                                                                       monkeypatch):
    """Past ``OVERLAP_MAX_PLAYS`` (their peaks would add up) verify re-folds the totals after the day's checks on
    the calling thread, up to it alongside them on a second one; either way the same checks, in the same order."""
    import threading

    from include.plays import verify as ver

    categories(mysql_db, [], [])
    for i in range(20):
        put_play(redis_db, DAY, f"100000{i % 2}_{i}")
    root = DataRoot(str(tmp_path / "r"))
    out = run_day(root, redis_db, mysql_hook(mysql_db), DAY)
    on_main: list[bool] = []
    real = ver._running_totals

    def spy(*a, **k):
        on_main.append(threading.current_thread() is threading.main_thread())
        return real(*a, **k)

    monkeypatch.setattr(ver, "_running_totals", spy)
    monkeypatch.setattr(ver, "OVERLAP_MAX_PLAYS", limit)
    got = ver.verify_plays(root, DAY)
    assert on_main == [limit == 0]
    assert [c["name"] for c in got] == [c["name"] for c in out["verify"]] and all(c["ok"] for c in got)


def _noted(seen: list, real, heap):
    seen.append(heap)
    return real(heap)


def test_small_days_keep_their_heap_big_days_hand_it_back(redis_db, mysql_db, tmp_path, monkeypatch):
    """Up to ``SMALL_DAY_PLAYS`` a day's rollup and verify keep freed memory for their next step (the rollup does
    not hand it back, and counts the ips alongside its sums; verify reuses blocks up to 16 MiB): fewer page faults.
    Past it they hand it back after every step (a lower peak). Pass 2 hands it back every ``TRIM_EVERY`` chunks
    whatever the size. Either way the same documents and checks."""
    from include.plays import ingest_write, rollup_videos, verify
    from include.plays.ingest_plays import ingest_plays
    from include.procs import SMALL_HEAP, TIGHT_HEAP
    from video_analytics.conventions import KID_HASH, PLAYID_HASH, reservation_key

    categories(mysql_db, [], [])
    for i in range(40):
        put_play(redis_db, DAY, f"100000{i % 3}_{i}")
    runs = {}
    real_lean = verify.lean_memory
    for limit in (10**9, 0):
        calls: dict = {"pass2": [], "rollup": [], "heap": []}
        monkeypatch.setattr(ingest_write, "trim_heap", functools.partial(calls["pass2"].append, None))
        monkeypatch.setattr(rollup_videos, "trim_heap", functools.partial(calls["rollup"].append, None))
        monkeypatch.setattr(verify, "lean_memory", functools.partial(_noted, calls["heap"], real_lean))
        for mod, name in ((rollup_videos, "SMALL_DAY_PLAYS"), (verify, "OVERLAP_MAX_PLAYS")):
            monkeypatch.setattr(mod, name, limit)
        redis_db.delete(PLAYID_HASH, KID_HASH, reservation_key(DAY))
        root = DataRoot(str(tmp_path / f"r{limit}"))
        ingest_plays(root, redis_db, mysql_hook(mysql_db), DAY, chunk=3, workers=0)  # 14 chunks
        rollup_videos.rollup_videos(root, DAY, redis_db)
        checks = verify.verify_plays(root, DAY, redis=redis_db)
        assert all(c["ok"] for c in checks), checks
        runs[limit] = (calls, all_documents(root))
    small, big = runs[10**9][0], runs[0][0]
    assert (len(small["pass2"]), len(big["pass2"])) == (2, 2)  # chunks 0 and 8, at any size
    assert not small["rollup"] and len(big["rollup"]) >= 5
    assert (small["heap"], big["heap"]) == ([SMALL_HEAP], [TIGHT_HEAP])
    assert runs[0][1] == runs[10**9][1]
