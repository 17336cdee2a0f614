"""The pure play-statistics core (no Redis, no files)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import ujson
from hypothesis import given, settings
from hypothesis import strategies as st

from video_analytics import plays as core
from video_analytics.segments import play_runs

S = {"starttime": "t", "country": "CN", "region": "R", "city": "c", "ip": "1.1.1.1", "os": "o", "browser": "b",
     "flow": 10.0, "comprate": 0.5}


def _b(obj):
    return ujson.dumps(obj).encode()


def test_dumps_is_legacy_ujson():
    assert core.dumps([[0, 2, 1], [2, 6, 3]]) == "[[0,2,1],[2,6,3]]"
    assert core.dumps("a/é") == '"a\\/\\u00e9"'


def test_ratio_zero_denominator():
    assert core.ratio(3, 0) == 0.0 and core.ratio(3, 4) == 0.75 and isinstance(core.ratio(2, 1), float)


def test_decode_reasons_in_order():
    keys = ["1000001_a", "1000001_b", "1000001_c", "1000001_d", "", "1000001_f", "1000001_g"]
    s = [_b(S), None, b"{", _b({**S, "region": "a.b"}), _b(S), _b({**S, "flow": "x"}), _b({k: v for k, v in S.items() if k != "os"})]
    j = [b"[[1,2],[2,2],[3,1]]", b"[]", b"[]", b"[]", b"[]", b"[]", None]
    z = [b"\xc3\xbc/", None, None, None, None, None, None]
    plays, q, seg = core.decode_plays(keys, s, j, z, "20140101")
    assert plays["key"].tolist() == ["1000001_a"]
    assert dict(zip(q["key"], q["reason"], strict=True)) == {
        "1000001_b": "missing_S", "1000001_c": "invalid_json_S", "1000001_d": "bad_region", "": "bad_vid",
        "1000001_f": "non_numeric:flow", "1000001_g": "missing_J"}
    row = plays.iloc[0]
    assert row["Htmap"] == "[[0,4,2],[4,6,1]]" and row["zz_uinfo"] == '"\\u00fc\\/"'
    assert (row["vid"], row["uid"], row["region"], row["flow"]) == ("1000001", "1000", "R", 10.0)


def test_empty_segments_give_empty_htmap():
    plays, q, _ = core.decode_plays(["1000001_a"], [_b(S)], [b"[]"], [None], "d")
    assert plays["Htmap"].tolist() == ["[]"] and q.empty


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(1, 8), st.integers(0, 3)), max_size=6), min_size=1, max_size=12),
       st.lists(st.integers(0, 2), min_size=12, max_size=12))
def test_play_segments_match_a_naive_sum(js, vids):
    keys = [f"100000{vids[i]}_{i}" for i in range(len(js))]
    plays, q, segtab = core.decode_plays(keys, [_b(S)] * len(js), [_b([list(x) for x in j]) for j in js],
                                         [None] * len(js), "d")
    assert q.empty
    got = core.play_segments(plays, segtab)
    heat, cnt = {}, {}
    for k, j in zip(keys, js, strict=True):
        for s, c in j:
            heat[(k[:7], s)] = heat.get((k[:7], s), 0) + c
            cnt[(k[:7], s)] = cnt.get((k[:7], s), 0) + 1
    assert {(v, s): h for v, s, h in zip(got["vid"], got["seg"], got["heat"], strict=True)} == heat
    assert {(v, s): p for v, s, p in zip(got["vid"], got["seg"], got["plays"], strict=True)} == cnt
    assert plays["Htmap"].tolist() == [core.dumps(play_runs(j)) for j in js]


def test_contributions_and_documents():
    plays = pd.DataFrame({
        "vid": ["1000001", "1000001", "1000002"], "uid": ["1000"] * 3, "kid": ["k", "k", "nokid"],
        "region": ["A", "B", "A"], "flow": [1.0, 2.0, 4.0], "comprate": [0.5, 0.25, 1.0],
        "ipkey": ["x", "x", "y"], "playid": [3, 4, 1]})
    segs = pd.DataFrame({"vid": ["1000001"], "seg": [1], "heat": [3], "plays": [2]})
    c = core.contributions(plays, segs, {"1000001": 10}, {"1000001": 2}, {"1000001A": 7})
    vd = core.vdaily_docs(c)["1000"]
    assert vd["1000001"] == {"Traffic": 3.0, "EngageSum": 0.75, "Load": 10, "Play": 2, "Click": 0.2, "IP": 1,
                             "Engage": 0.375, "Geo": {
                                 "A": {"ClickNum": 1, "Traffic": 1.0, "EngageSum": 0.5, "Load": 7},
                                 "B": {"ClickNum": 1, "Traffic": 2.0, "EngageSum": 0.25, "Load": 0}}}
    assert vd["1000002"]["Click"] == 0.0 and vd["1000002"]["Engage"] == 0.0  # missing entries -> 0
    daily = core.daily_docs(c)["1000"]
    assert daily["Geo"]["A"] == {"ClickNum": 2, "Traffic": 5.0, "EngageSum": 1.5, "Load": 0}
    assert daily["IP"] == 2 and daily["Load"] == 10
    assert set(core.type_docs(c)["1000"]) == {"k"}
    from video_analytics import totals as tot

    t = tot.fold(tot.fold(tot.empty_state(), None, c, "20140106"), "20140106", c, "20140107")
    from tests.support import stat_reference

    stat = stat_reference.vid_stat_docs(t)["1000001"][1]
    assert stat["Play"] == 4 and stat["PlayID"] == 4 and stat["HeatMapSum"] == {"1": 6}
    assert stat["Htmap"] == "[[0,2,6]]" and stat["Ptmap"] == "[[0,2,4]]"
    assert stat_reference.uid_stat_docs(t, {"1000": 1.5})["1000"]["Mtraffic"] == 1.5
    assert dict(tot.uid_stat_docs(t))["1000"]["Mtraffic"] == 2 * 7.0


def test_ip_counts_given_counted_or_called_agree():
    """``coded_contributions`` counts the ips itself, takes them counted, or calls for them after its sums."""
    vc, kc, rc = np.array([0, 0, 1, 1, 1]), np.array([0, 0, 1, 1, 1]), np.array([0, 1, 0, 0, 1])
    args = (vc, ["1000001", "1000002"], kc, ["k", "nokid"], rc, ["A", "B"], ["x", "y", "x", "x", "z"],
            np.array([1.0, 2.0, 3.0, 4.0, 5.0]), np.array([0.5, 0.25, 1.0, 0.0, 0.5]), np.array([1, 2, 3, 4, 5]),
            pd.DataFrame({"vid": [], "seg": [], "heat": [], "plays": []}), {}, {}, {})
    own = core.coded_contributions(*args)
    calls = []
    counted = core.distinct_counts(vc, 2, args[6])
    called = core.coded_contributions(*args, ip_counts=lambda: calls.append(1) or counted)
    assert own["vid"]["IP"].tolist() == [2, 2] and calls == [1]
    for k in ("vid", "uid", "kid"):
        pd.testing.assert_frame_equal(own[k], core.coded_contributions(*args, ip_counts=counted)[k])
        pd.testing.assert_frame_equal(own[k], called[k])


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from(["1000009", "1000001", "2000005", "1000010"]),
                               st.sampled_from(["Zé", "a", "B", "é", "10", "9", "ä"]),
                               st.floats(0, 1e6), st.floats(0, 1)), min_size=1, max_size=30))
def test_vid_region_rows_and_geo_in_name_order(rows):
    """The (vid, region) rows come sorted by their names as Python sorts them, whatever the order of the codes
    (first appearance), with each row's own sums and ``Load``; the documents' ``Geo`` holds exact ints and
    floats."""
    vid, region, flow, rate = (list(c) for c in zip(*rows, strict=True))
    plays = pd.DataFrame({"vid": vid, "uid": [v[:4] for v in vid], "kid": ["k"] * len(vid), "region": region,
                          "flow": flow, "comprate": rate, "ipkey": ["x"] * len(vid), "playid": range(len(vid))})
    pairs = sorted({(v, r) for v, r in zip(vid, region, strict=True)})
    region_load = {v + r: 7 * i for i, (v, r) in enumerate(pairs)}  # vids have 7 characters: keys are distinct
    c = core.contributions(plays, pd.DataFrame({"vid": [], "seg": [], "heat": [], "plays": []}), {}, {},
                           region_load)
    vr = c["vid_region"]
    assert list(zip(vr["vid"].tolist(), vr["region"].tolist(), strict=True)) == pairs
    for (v, r), n, t, load in zip(pairs, vr["ClickNum"], vr["Traffic"], vr["Load"], strict=True):
        mine = [f for pv, pr, f in zip(vid, region, flow, strict=True) if (pv, pr) == (v, r)]
        assert (n, load) == (len(mine), region_load[v + r]) and t == pytest.approx(sum(mine), rel=1e-12)
    geo = [g for docs in core.vdaily_docs(c).values() for doc in docs.values() for g in doc["Geo"].values()]
    assert len(geo) == len(pairs)
    assert {tuple(type(g[k]) for k in ("ClickNum", "Traffic", "EngageSum", "Load")) for g in geo} == {
        (int, float, float, int)}


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 5), st.one_of(st.none(), st.sampled_from(["a", "b", "c", "é", ""]))),
                     max_size=40),
       per_bucket=st.sampled_from([1, 3, 7, 1 << 20]), chunk=st.sampled_from([0, 1, 3, 5]),
       dtype=st.sampled_from([np.int64, np.int32]))
def test_distinct_counts_exact_whatever_the_buckets(rows, per_bucket, chunk, dtype):
    """Exact whatever the bucket size, the chunks of the values (taken chunk by chunk) and the code type."""
    import pyarrow as pa

    group = np.array([g for g, _ in rows], dtype=dtype)
    vals = [v for _, v in rows]
    arr = pa.chunked_array([pa.array(vals[i: i + chunk], pa.string()) for i in range(0, len(vals), chunk)],
                           type=pa.string()) if chunk else vals
    want = np.zeros(6, dtype=np.int64)
    for g in range(6):
        want[g] = len({v for gg, v in rows if gg == g})  # None is one more value
    got = core.distinct_counts(group, 6, arr, rows_per_bucket=per_bucket)
    assert got.tolist() == want.tolist()


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.lists(st.one_of(st.none(), st.text(max_size=3), st.sampled_from(["\ud800", "a\x00"]))),
                 st.lists(st.one_of(st.none(), st.binary(max_size=2))),
                 st.lists(st.one_of(st.none(), st.text(max_size=2), st.binary(max_size=2), st.integers(-2, 2)))))
def test_factorize_is_pandas_factorize(values):
    """The decoders' factorize (Arrow's hash table, or a dict for mixed types and lone surrogates) gives
    pandas' codes and uniques: first appearance order, None -1."""
    from video_analytics import play_decode

    codes, uniques = play_decode.factorize(values)
    want_codes, want_uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    assert codes.tolist() == want_codes.tolist()
    assert uniques == list(want_uniques)


def test_distinct_counts_of_integer_codes_and_of_nothing():
    assert core.distinct_counts(np.array([0, 0, 1, 0]), 3, np.array([7, 7, 7, 8])).tolist() == [2, 1, 0]
    assert core.distinct_counts(np.zeros(0, dtype=np.int64), 2, []).tolist() == [0, 0]


def test_allocate_ids_in_order_per_vid():
    ids = core.allocate_ids(pd.Series(["a", "b", "a", "a"], dtype=object), {"a": 10, "b": 0})
    assert ids.tolist() == [11, 1, 12, 13]


def test_close_and_diff():
    assert core.close({"a": 1.0, "b": [1, 2]}, {"a": 1.0 + 1e-12, "b": [1, 2]})
    assert not core.close({"a": 1}, {"a": 1.0})  # ints stay ints
    assert not core.close({"a": 1.0}, {"a": 1.1})
    assert core.diff({"a": {"b": 1}}, {"a": {"b": 2}}) == [".a.b: 1 != 2"]
    assert core.safe_name("x") and not core.safe_name("a.b") and not core.safe_name("$a") and not core.safe_name("")
    assert np.isnan(core._as_float(["x"])[0])


def test_parse_tables_counts_bad_entries():
    rows = [("load", "v1", "10"), ("load", "v2", "2.9"), ("play", "v1", "x"), ("region", "v1R", None)]
    tables, bad = core.parse_tables(rows)
    assert tables == {"load": {"v1": 10, "v2": 2}, "play": {"v1": 0}, "region": {"v1R": 0}}
    assert bad == 2


def test_play_doc_frame_maps_fields():

    plays = pd.DataFrame({"vid": ["1000001"], "playid": [7], "PlayTime": ["t"], "PIP": ["ip"], "comprate": [0.5],
                          "Country": ["CN"], "region": ["R"], "PGeo": ["c"], "Htmap": ["[]"], "OS": ["o"],
                          "Browser__json": ["1"], "zz_uinfo": [None]})
    docs = core.play_doc_frame(plays, "20140107")
    assert docs.to_dict("records") == [{"coll": "1000001_play", "_id": 7, "Date": "20140107", "PlayTime": "t",
                                        "PIP": "ip", "Engage": 0.5, "Country": "CN", "Provinces": "R", "PGeo": "c",
                                        "Htmap": "[]", "OS": "o", "Browser__json": "1", "zz_uinfo": None}]
