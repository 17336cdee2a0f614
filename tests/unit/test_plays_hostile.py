"""Hostile plays (issue: hardening): each is quarantined with its reason; the rest of the day goes on."""

from __future__ import annotations

import numpy as np
import ujson
from hypothesis import given, settings
from hypothesis import strategies as st

from video_analytics import play_decode
from video_analytics import plays as core

S = {"starttime": "t", "country": "CN", "region": "R", "city": "c", "ip": "1.1.1.1", "os": "o", "browser": "b",
     "flow": 10.0, "comprate": 0.5}
GOOD_J = b"[[1,1],[2,1]]"


def _decode(cases: dict[str, tuple]):
    """``{key: (S dict or raw bytes, J bytes)}`` -> ({key: reason} of the quarantined, ingested keys)."""
    keys = list(cases)
    s = [v[0] if isinstance(v[0], bytes) else ujson.dumps(v[0]).encode() for v in cases.values()]
    j = [v[1] for v in cases.values()]
    plays, q, _ = core.decode_plays(keys, s, j, [None] * len(keys), "20140101")
    return dict(zip(q["key"], q["reason"], strict=True)), plays["key"].tolist()


def test_nested_json_in_text_fields_is_quarantined():
    cases = {"1000001_ok": (S, GOOD_J), "1000001_num": ({**S, "city": 7, "os": 1.5}, GOOD_J)}
    for i, f in enumerate(core.TEXT_FIELDS):
        for j, bad in enumerate(({"$gt": ""}, ["$ne", 1], {"a.b": 1}, True, {"$where": "1"})):
            cases[f"1000001_{i}{j}"] = ({**S, f: bad}, GOOD_J)
    cases["1000001_nan"] = (b'{"starttime":NaN,"country":"CN","region":"R","city":"c","ip":"i","os":"o",'
                            b'"browser":"b","flow":1,"comprate":0.1}', GOOD_J)
    cases["1000001_big"] = ({**S, "ip": 2**63}, GOOD_J)
    q, ok = _decode(cases)
    assert ok == ["1000001_ok", "1000001_num"]
    for i, f in enumerate(core.TEXT_FIELDS):
        assert {q[f"1000001_{i}{j}"] for j in range(5)} == {f"non_text:{f}"}
    assert q["1000001_nan"] == "non_text:starttime" and q["1000001_big"] == "non_text:ip"


def test_segments_outside_64_bits_or_unusable_are_quarantined():
    cases = {"1000001_ok": (S, GOOD_J)}
    for i, raw in enumerate((b"[[18446744073709551615,1]]", b"[[1,18446744073709551615]]",
                             b"[[9223372036854775807,1]]", b"[[-9223372036854775809,1]]", b"[[0,1]]",
                             b"[[1,-1]]", b"[[2147483648,1]]", b"[[true,1]]", b"[[1.5,1]]")):
        cases[f"1000001_j{i}"] = (S, raw)
    q, ok = _decode(cases)
    assert ok == ["1000001_ok"]
    assert set(q.values()) <= {"bad_segments", "invalid_json_J", "too_large"} and len(q) == 9
    assert q["1000001_j2"] == q["1000001_j6"] == "too_large"  # segments above 43,200 (CONTRACT §2)
    # the segment table of the surviving plays builds without overflow
    plays, _, segtab = core.decode_plays(list(cases), [ujson.dumps(S).encode()] * len(cases),
                                         [v[1] for v in cases.values()], [None] * len(cases), "d")
    assert core.play_segments(plays, segtab)["heat"].tolist() == [1, 1]


def test_oversized_values_and_far_segments_are_quarantined_too_large():
    """CONTRACT §2: K_S over 64 KiB, K_J over 1 MiB, a segment above 43,200: ``too_large``, kept raw."""
    big_city = ujson.dumps({**S, "city": "x" * (64 * 1024)}).encode()
    wide_city = ujson.dumps({**S, "city": "\u00e9" * 20_000}, ensure_ascii=False)  # 20,000 chars, 40,000 bytes
    wider_city = ujson.dumps({**S, "city": "\u00e9" * 33_000}, ensure_ascii=False)  # 66,000 bytes
    long_j = b"[" + b",".join(b"[1,1]" for _ in range(210_000)) + b"]"  # 1,259,999 bytes
    cases = {"1000001_ok": (S, GOOD_J), "1000001_edge": (S, b"[[43200,5],[1,1]]"),
             "1000001_far": (S, b"[[1,1],[43201,1]]"), "1000001_bigS": (big_city, GOOD_J),
             "1000001_longJ": (S, long_j), "1000001_wide": (wide_city, GOOD_J),
             "1000001_wider": (wider_city, GOOD_J)}
    keys = list(cases)
    s_raw = [v[0] if isinstance(v[0], bytes | str) else ujson.dumps(v[0]).encode() for v in cases.values()]
    d = core.decode_columns(keys, s_raw, [v[1] for v in cases.values()], [None] * len(keys))
    q = dict(zip(d.quarantine["key"], d.quarantine["reason"], strict=True))
    assert d.columns["key"] == ["1000001_ok", "1000001_edge", "1000001_wide"]
    assert q == {k: "too_large" for k in ("1000001_far", "1000001_bigS", "1000001_longJ", "1000001_wider")}
    raw = dict(zip(d.quarantine["key"], zip(d.quarantine["S"], d.quarantine["J"], strict=True), strict=True))
    assert raw["1000001_bigS"][0] == big_city and raw["1000001_longJ"][1] == long_j  # kept raw, whole
    limit = play_decode.S_MAX_BYTES
    assert play_decode.over_bytes(b"x" * limit, limit) is False
    assert play_decode.over_bytes("\u00e9" * (limit // 2 + 1), limit) is True


def test_nul_bytes_in_names_are_quarantined():
    q, ok = _decode({"1000001_ok": (S, GOOD_J), "10\x0000001_a": (S, GOOD_J),
                     "1000001_r": ({**S, "region": "Gu\x00ang"}, GOOD_J)})
    assert ok == ["1000001_ok"] and q == {"10\x0000001_a": "bad_vid", "1000001_r": "bad_region"}
    assert core.kid_reasons(__import__("pandas").Series(["1000001"]), {"1000001": "k\x00"}).tolist() == [True]


def test_flows_beyond_the_bound_are_quarantined_so_totals_stay_finite():
    q, ok = _decode({"1000001_a": ({**S, "flow": 1e308}, GOOD_J), "1000001_b": ({**S, "flow": 1e308}, GOOD_J),
                     "1000001_c": ({**S, "flow": -1.0}, GOOD_J), "1000001_d": ({**S, "comprate": 1e300}, GOOD_J),
                     "1000001_e": ({**S, "flow": core.FLOW_MAX}, GOOD_J)})
    assert ok == ["1000001_e"]
    assert q == {"1000001_a": "out_of_range:flow", "1000001_b": "out_of_range:flow",
                 "1000001_c": "out_of_range:flow", "1000001_d": "out_of_range:comprate"}


def test_path_characters_in_a_vid_are_quarantined():
    q, ok = _decode({"ab/cdef_1": (S, GOOD_J), "/tmp/xx_1": (S, GOOD_J), "ab\\cdef_1": (S, GOOD_J),
                     "1000001_ok": (S, GOOD_J)})
    assert ok == ["1000001_ok"] and set(q.values()) == {"bad_vid"} and len(q) == 3


def test_readme_lists_every_quarantine_reason():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = [r for r in text.splitlines() if r.startswith("| `")]
    listed = set()
    for row in rows:
        for name in re.findall(r"`([a-z_A-Z]+(?::[<a-z>]+)?)`", row.split("|")[1]):
            listed.add(name)
    for reason in core.QUARANTINE_REASONS:
        generic = reason.split(":")[0] + ":<f>" if ":" in reason else reason
        assert reason in listed or generic in listed, f"README does not list {reason}"


_TEXTISH = st.one_of(st.text(max_size=6), st.integers(min_value=-(2**70), max_value=2**70),
                     st.floats(allow_nan=True, allow_infinity=True), st.none(), st.booleans(),
                     st.lists(st.integers(), max_size=2), st.dictionaries(st.sampled_from(["$gt", "a.b"]), st.integers(),
                                                                          max_size=1))


def _raw_s(fields: dict, extra: list[tuple[str, str]], drop: set[str]) -> bytes:
    """A K_S text: the fields as JSON (ujson, which writes NaN/Infinity too), some dropped, some raw extras
    (duplicate keys, non-standard numbers) appended inside the object."""
    body = [f'"{k}":{ujson.dumps(v, reject_bytes=False)}' for k, v in fields.items() if k not in drop]
    body += [f'"{k}":{v}' for k, v in extra]
    return ("{" + ",".join(body) + "}").encode()


@settings(max_examples=300, deadline=None)
@given(values=st.fixed_dictionaries({f: _TEXTISH for f in core.FIELDS}),
       extra=st.lists(st.tuples(st.sampled_from(core.FIELDS),
                                st.sampled_from(["01", "1.", "NaN", "-Infinity", "1e400", "\"x\"", "2.5e-324", "null",
                                                 "123456789012345678901234567890", "0.1", "\"\\ud800\"", "true"])),
                      max_size=2),
       drop=st.sets(st.sampled_from(core.FIELDS), max_size=2),
       mangle=st.sampled_from([b"", b" ", b"x", b"\xff", b"\x00"]))
def test_fast_k_s_decoder_gives_what_the_ujson_path_gives(values, extra, drop, mangle):
    """The msgspec fast path for well-formed K_S must change speed only: same columns, same reasons."""
    try:
        raw = _raw_s(values, extra, drop) + mangle
    except (OverflowError, TypeError):
        return
    raws = [raw, ujson.dumps(S).encode()]
    args = (["1000001_a", "1000001_b"], raws, [GOOD_J, GOOD_J], [None, b"z"])
    fast, slow = core.decode_columns(*args, fast=True), core.decode_columns(*args, fast=False)
    assert fast.quarantine == slow.quarantine
    assert fast.pos.tolist() == slow.pos.tolist()
    for name, col in slow.columns.items():
        got, want = fast.columns[name], col
        if isinstance(want, np.ndarray):
            assert np.array_equal(got, want, equal_nan=True), name
        else:
            assert [(type(v), v) for v in got] == [(type(v), v) for v in want], name


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"-?(0|[1-9][0-9]{0,20})(\.[0-9]{1,25})?([eE][-+]?[0-9]{1,3})?", fullmatch=True))
def test_fast_k_s_decoder_reads_every_decimal_as_ujson_does(num):
    raw = _raw_s({**S, "flow": 0}, [("flow", num), ("comprate", num), ("city", num)], set())
    fast = core._fields([raw], fast=True)[0]
    slow = core._fields([raw], fast=False)[0]
    assert [(type(fast[f][0]), fast[f][0]) for f in core.FIELDS] == [(type(slow[f][0]), slow[f][0]) for f in core.FIELDS]
