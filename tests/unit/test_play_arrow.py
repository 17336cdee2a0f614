"""The C reader of ``K_S`` and ``K_z1`` (``video_analytics.play_arrow``, ``_fastplay.c``) changes speed only: a
chunk read from its Arrow buffers decodes exactly as the same values in lists by the Python rule, hostile
values included, and plain values really are decided in C."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
import ujson
from hypothesis import given, settings
from hypothesis import strategies as st

from video_analytics import play_arrow
from video_analytics import play_decode as pd
from video_analytics import play_fast as pf

pytestmark = pytest.mark.skipif(not pf.HAVE_FAST, reason="the C accelerator is not built")

S = {"starttime": "2014-01-07 23:59:58", "country": "CN", "region": 44, "city": "深圳", "ip": "1.1.1.1",
     "os": "Windows 7", "browser": "QQ浏览器", "flow": 1234, "comprate": 0.5}
J = b"[[1,1],[2,1]]"

TEXT = st.one_of(st.text(max_size=6), st.text(alphabet=st.sampled_from('/"\\\x00\x1f\x7fé€😀\u2028\ud800aZ'),
                                              max_size=6))
VALUE = st.one_of(TEXT, st.integers(min_value=-(2**70), max_value=2**70), st.integers(0, 10**18),
                  st.floats(allow_nan=False, allow_infinity=False), st.floats(), st.none(), st.booleans(),
                  st.lists(st.integers(), max_size=2), st.dictionaries(st.sampled_from(["$gt", "a.b"]), st.integers(),
                                                                       max_size=1))
EXTRA = st.sampled_from(['"x":1', '"x":[1,{"y":[null,true,false,"\\u00e9"]}]', '"x":{}', '"flow":2', '"region":"R"',
                         '"regi\\u006fn":"R"', '"x":1e999', '"x":12345678901234567890', '"x":01', '"x":"\\ud800"',
                         '"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]', '"x":tru',
                         '"":""', '"x":"\\q"', '"x":-0.0e-5'])
WS = st.sampled_from(["", " ", "\n\t", "\r", "\x0b"])


@st.composite
def s_texts(draw) -> bytes | None:
    """A K_S value: fields from ``VALUE`` (or the plain ones), written by ujson (\\u escapes, \\/) or by json
    (raw UTF-8), with odd spacing, unknown members, duplicates, dropped fields and mangled bytes."""
    if draw(st.integers(0, 9)) == 0:
        return None
    fields = {f: draw(VALUE) if draw(st.integers(0, 3)) == 0 else S[f] for f in pd.FIELDS}
    for f in draw(st.sets(st.sampled_from(pd.FIELDS), max_size=1)):
        del fields[f]
    ws = draw(WS)
    try:
        if draw(st.booleans()):
            body = [f'"{k}"{ws}:{ws}{ujson.dumps(v)}' for k, v in fields.items()]
        else:
            body = [f'"{k}":{json.dumps(v, ensure_ascii=False)}' for k, v in fields.items()]
    except (OverflowError, TypeError):
        body = ['"x":1']
    body += draw(st.lists(EXTRA, max_size=2))
    body = draw(st.permutations(body))
    text = (ws + "{" + ws + f",{ws}".join(body) + ws + "}" + ws).encode("utf-8", "surrogatepass")
    mangle = draw(st.sampled_from(["none"] * 6 + ["cut", "insert", "trailing"]))
    if mangle == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    elif mangle == "insert":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from([b"\xff", b"\x00", b",", b"\\", b'"', b"\xc3", b"}"])) + text[at:]
    elif mangle == "trailing":
        text += draw(st.sampled_from([b"x", b",", b"{}", b"\x00"]))
    return text


Z1 = st.one_of(st.none(), st.binary(max_size=12), TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")))


def _arrow(values: list, cut: int):
    """``values`` as a chunked Arrow binary array, split at ``cut``, each chunk a slice of a larger array."""
    chunks = [pa.array([b"{}", *part, b"{}"], pa.binary()).slice(1, len(part)) for part in (values[:cut], values[cut:])]
    return pa.chunked_array(chunks, pa.binary())


def _plain(values) -> list:
    return values.to_pylist() if play_arrow.is_arrow(values) else list(values)


def _same(got: pd.Decoded, want: pd.Decoded) -> None:
    assert got.quarantine == want.quarantine
    assert got.pos.tolist() == want.pos.tolist()
    assert got.columns.keys() == want.columns.keys()
    for name, col in want.columns.items():
        if isinstance(col, np.ndarray):
            assert np.array_equal(np.asarray(got.columns[name]), col, equal_nan=True), name
        else:
            assert [(type(v), v) for v in _plain(got.columns[name])] == [(type(v), v) for v in col], name


@settings(max_examples=400, deadline=None)
@given(rows=st.lists(st.tuples(s_texts(), Z1), min_size=1, max_size=12), cut=st.integers(0, 12),
       good=st.booleans())
def test_arrow_chunk_decodes_as_the_python_rule_decodes_its_lists(rows, cut, good):
    s = [r[0] for r in rows] + [ujson.dumps(S).encode()] * good
    z = [r[1] for r in rows] + [None] * good
    keys = [f"100000{i % 3}_{i}" for i in range(len(s))]
    j = [J] * len(s)
    want = pd.decode_columns(keys, s, j, z, fast=False)
    got = pd.decode_columns(keys, _arrow(s, min(cut, len(s))), j, _arrow(z, min(cut, len(z))), fast=True)
    _same(got, want)


def test_plain_values_are_decided_in_c():
    """Escapes, non-ASCII text, a province code, unknown members: the C reader's own columns, no Python rule."""
    rows = [ujson.dumps(S).encode(), json.dumps(S, ensure_ascii=False).encode(),
            json.dumps({**S, "extra": [1, {"a": None}], "city": "a/\"\\\n😀"}).encode(),
            b' {"starttime":"t" , "country":"CN","region":"R","city":"c","ip":"i","os":"o","browser":"b",'
            b'"flow":1.5e3,"comprate":0} ']
    status, _ = pf.decode_s_arrow(pa.array(rows, pa.binary()), pd.FIELDS, pd._S_KINDS, 1 << 14)  # noqa: SLF001
    assert status.tolist() == [0, 0, 0, 0]
    cols, bad, big = pd._fields(pa.array(rows, pa.binary()))  # noqa: SLF001
    assert all(play_arrow.is_arrow(c) for c in cols.values()) and not bad.any() and not big.any()
    assert cols["city"].to_pylist() == ["深圳", "深圳", "a/\"\\\n😀", "c"]
    assert cols["region"].to_pylist() == ["44", "44", "44", "R"]
    assert cols["flow"].to_pylist() == [1234.0, 1234.0, 1234.0, 1500.0]


def test_values_the_reader_does_not_decide_go_to_the_python_rule():
    rows = [b'{"starttime":"t"}', b"[]", None, json.dumps({**S, "flow": "12"}).encode(),
            json.dumps({**S, "region": -4}).encode(), b'{"a":1,' + ujson.dumps(S).encode()[1:] + b"x",
            ujson.dumps({**S, "os": 7}).encode(), b'{"\xffx":1,' + ujson.dumps(S).encode()[1:]]
    status, _ = pf.decode_s_arrow(pa.array(rows, pa.binary()), pd.FIELDS, pd._S_KINDS, 1 << 14)  # noqa: SLF001
    assert status.tolist() == [2, 2, 1, 2, 2, 2, 2, 2]
    keys = [f"1000001_{i}" for i in range(len(rows))]
    got = pd.decode_columns(keys, pa.array(rows, pa.binary()), [J] * len(rows), [None] * len(rows))
    assert dict(zip(got.quarantine["key"], got.quarantine["reason"], strict=True)) == {
        "1000001_0": "missing_field:country", "1000001_1": "invalid_json_S", "1000001_2": "missing_S",
        "1000001_5": "invalid_json_S", "1000001_7": "invalid_json_S"}  # not UTF-8, in a member msgspec skips
    assert _plain(got.columns["region"]) == ["44", "-4", "44"] and got.columns["flow"].tolist() == [12.0, 1234.0, 1234.0]
    assert _plain(got.columns["OS"]) == ["Windows 7", "Windows 7", 7]  # a number: a list, as the Python rule keeps it


@settings(max_examples=300, deadline=None)
@given(values=st.lists(Z1, max_size=10))
def test_uinfo_is_what_ujson_writes(values):
    got = play_arrow.uinfo(pa.array(values, pa.binary())).to_pylist()
    assert got == [None if v is None else ujson.dumps(v.decode("utf-8", "replace")) for v in values]


def test_without_the_c_module_arrow_columns_take_the_list_path(monkeypatch):
    rows = [ujson.dumps(S).encode(), None, b"{", json.dumps({**S, "os": 7}).encode()]
    z = [b"a/\xc3\xa9", None, b"\xff", b""]
    keys = [f"1000001_{i}" for i in range(len(rows))]
    monkeypatch.setattr(pf, "HAVE_FAST", False)
    want = pd.decode_columns(keys, rows, [J] * len(rows), z)
    got = pd.decode_columns(keys, pa.array(rows, pa.binary()), [J] * len(rows), pa.array(z, pa.binary()))
    assert not any(play_arrow.is_arrow(c) for c in got.columns.values())
    _same(got, want)
