"""The C path of the play decoder (``_fastplay.c`` through ``video_analytics.play_fast``) gives exactly what the
Python path gives: reasons, ``Htmap`` texts, segments, counts and per (vid, segment) sums, hostile input included."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import ujson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from video_analytics import play_decode as pd
from video_analytics import play_fast as pf

pytestmark = pytest.mark.skipif(not pf.HAVE_FAST, reason="the C accelerator is not built")

WS = st.sampled_from(["", "", "", " ", "\n", "\t", "\r", " \n", "\x0b", "\x0c", "\xa0"])
INT = st.one_of(st.integers(-3, 45_000), st.integers(0, 2**31 + 2), st.integers(-(2**70), 2**70),
                st.sampled_from([0, 1, 43_200, 43_201, 2**31 - 1, 2**31, 2**63, 2**64]))
NUM_TEXT = st.one_of(INT.map(str), st.sampled_from(["01", "-0", "1.0", "1e2", "true", "null", '"1"', "00", "+1",
                                                    "1" * 19, "1" * 18, "NaN", "[]"]))


@st.composite
def kj_texts(draw) -> str | bytes:
    """A K_J text: mostly well-formed, with odd spacing, numbers and structure."""
    pairs = draw(st.lists(st.tuples(NUM_TEXT, NUM_TEXT), max_size=12))
    ws = draw(WS)
    body = f",{ws}".join(f"[{ws}{s}{ws},{draw(WS)}{c}{ws}]" for s, c in pairs)
    text = f"{draw(WS)}[{ws}{body}{ws}]{draw(WS)}"
    mutation = draw(st.sampled_from(["none"] * 6 + ["cut", "insert", "wrap", "nested", "trailing"]))
    if mutation == "cut" and text:
        text = text[: draw(st.integers(0, len(text) - 1))]
    elif mutation == "insert":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from([",", "]", "[", "x", "\x00", "é", "1", "-", " ", '"'])) + text[at:]
    elif mutation == "wrap":
        text = "[" + text + "]"
    elif mutation == "nested":
        text = text.replace("[", "[[", 1)
    elif mutation == "trailing":
        text += draw(st.sampled_from([",", "x", "]", "[]", "\x00"]))
    return text.encode("utf-8") if draw(st.booleans()) else text


VALUES = st.one_of(kj_texts(), st.binary(max_size=30), st.text(max_size=20),
                   st.sampled_from([b"\xff[[1,1]]", "[[1,1]]\ud800", b"{}", b"null", b"[[1,1,1]]", b"[[1]]", b""]))


def both_tables(values: list, monkeypatch) -> tuple:
    fast = pf.segment_table(list(values))
    monkeypatch.setattr(pf, "HAVE_FAST", False)
    pd._J_CACHE.clear()  # noqa: SLF001 - the Python path from scratch
    slow = pd.build_segment_table(list(values))
    monkeypatch.setattr(pf, "HAVE_FAST", True)
    return fast, slow


def per_value(table: pd.SegmentTable) -> list[tuple]:
    out = []
    for i, text in enumerate(table.htmap):
        lo, n = int(table.offsets[i]), int(table.lengths[i])
        out.append((text, table.segs[lo: lo + n].tolist(), table.cnts[lo: lo + n].tolist()))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(VALUES, max_size=20, unique_by=lambda v: (type(v), v)))
def test_c_segment_table_equals_the_python_one(values, monkeypatch):
    (fast, fast_reasons), (slow, slow_reasons) = both_tables(values, monkeypatch)
    assert fast_reasons == slow_reasons
    assert per_value(fast) == per_value(slow)


def test_c_path_decides_plain_values_and_leaves_the_rest(monkeypatch):
    values = [b"[[1,1],[2,1],[3,2],[5,2]]", " [ [ 7 , 0 ] ] \n", b"[]", b"[[0,1]]", b"[[1,-1]]", b"[[1,01]]",
              b"[[1,1]]x", b"[[1,1],]", b"[[1,1.0]]", b"[[2147483648,1]]", b"[[1,2147483648]]", "[[1,1]]\u00e9",
              b"[[3,1],[2,1],[3,1]]", b"[[1,18446744073709551616]]"]
    status = pf._fastplay.decode_j(values, pd.SEGMENT_MAX, pf.FAST_MAX_BYTES)[0]  # noqa: SLF001
    assert list(status) == [0, 0, 0] + [2] * 9 + [0, 2]
    (fast, reasons), (slow, slow_reasons) = both_tables(values, monkeypatch)
    assert reasons == slow_reasons and per_value(fast) == per_value(slow)
    assert fast.htmap[:3] == ["[[0,4,1],[4,6,2],[8,10,2]]", "[[12,14,0]]", "[]"]
    assert fast.htmap[12] == "[[4,6,1],[2,6,1]]"  # merged in K_J order, as merge_segments does


def test_limits_come_from_the_python_rule(monkeypatch):
    """Values over the size limit or naming a segment beyond ``SEGMENT_MAX`` are not decided in C: whatever the
    Python rule says of them (``too_large`` by CONTRACT §2) is what the table holds."""
    big = b"[" + b",".join(b"[1,1]" for _ in range(pf.FAST_MAX_BYTES // 6 + 1)) + b"]"
    values = [big, f"[[{pd.SEGMENT_MAX + 1},1]]".encode(), b"[[43201,1]]", b"[[43200,1]]"]
    status = pf._fastplay.decode_j(values, pd.SEGMENT_MAX, pf.FAST_MAX_BYTES)[0]  # noqa: SLF001
    assert status[0] == status[1] == 2
    (fast, reasons), (slow, slow_reasons) = both_tables(values, monkeypatch)
    assert reasons == slow_reasons and per_value(fast) == per_value(slow)


def test_pair_arrays_sized_by_brackets_hold_every_value(monkeypatch):
    """The C parser sizes a call's pair arrays from the values' '[' (a pair is written only once its "[s,c]"
    is read): the densest values fill them, values that fail after some pairs (or hold no pair among many
    brackets) write no more than their bound, and every call's table is the one the Python rule gives."""
    dense = [b"[" + b",".join(b"[%d,%d]" % (1 + i % 9, i % 10) for i in range(n)) + b"]" for n in (1, 2, 1000, 20_000)]
    broken = [b"[[1,1],[2,2],[3,3]", b"[[1,1],[2,2]]]", b"[[[[[[[[", b"[[1,1][2,2]]", b"[[1,1],[2,2],[3,3],[4"]
    mixed = [b"[[1,1]]", b"[[3,1],[2,1]]", b"x", b"[]", b"[", b""]
    for values in (dense, broken + dense[:2], mixed, dense[::-1] + broken + mixed, [b"[[7,7]]"]):
        (fast, reasons), (slow, slow_reasons) = both_tables(values, monkeypatch)
        assert reasons == slow_reasons and per_value(fast) == per_value(slow)
        assert len(fast.segs) == len(fast.cnts) == int(np.sum(fast.lengths))


@pytest.mark.skipif(not pf.HAVE_FAST, reason="no C module")
@settings(max_examples=300, deadline=None)
@given(text=st.binary(max_size=9000) | st.lists(st.sampled_from(b"[[],1 "), max_size=9000).map(bytes),
       start=st.integers(0, 15), repeat=st.integers(1, 3))
@example(text=b"[" * 8200, start=3, repeat=1)  # one lane full for 255 steps and more
@example(text=b"[" * 32, start=0, repeat=1)
def test_pair_bound_counts_every_bracket(text, start, repeat):
    """``pair_bound`` (16 bytes a step in byte lanes, summed every 255 steps) counts the '[' of any bytes at any
    alignment and length, past the lanes' 255: the pair arrays are never sized short."""
    value = text * repeat
    assert pf._fastplay.pair_bound(memoryview(b"x" * start + value)[start:]) == max(value.count(b"[") - 1, 1)


PAIR_VARIANTS = ["plain"] * 12 + ["space_before", "space_inside", "zero_lead", "gap", "back", "count_up", "count_big",
                                  "comma_space", "minus", "float", "cut"]


@st.composite
def runs_of_pairs(draw) -> bytes:
    """A K_J of consecutive segments with one count, as viewers send them (the C parser guesses each next pair
    from the last one), across carries (9 to 10, 199 to 200), the segment limit and the value's last 16 bytes,
    with a few pairs written otherwise."""
    seg = draw(st.sampled_from([1, 7, 9, 18, 98, 99, 189, 998, 999, 9997, 43_190, 43_199, 43_200])
               | st.integers(1, 43_210))
    cnt = draw(st.sampled_from([0, 1, 1, 1, 2, 9, 10, 2**31 - 1, 2**31]))
    parts = []
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(PAIR_VARIANTS))
        text = f"[{seg},{cnt}]"
        if kind == "space_before":
            text = " " + text
        elif kind == "space_inside":
            text = f"[{seg} ,{cnt}]"
        elif kind == "zero_lead":
            text = f"[0{seg},{cnt}]"
        elif kind == "gap":
            seg += 2
            text = f"[{seg},{cnt}]"
        elif kind == "back":
            seg = max(1, seg - 3)
            text = f"[{seg},{cnt}]"
        elif kind == "count_up":
            cnt += 1
            text = f"[{seg},{cnt}]"
        elif kind == "count_big":
            text = f"[{seg},{2**31}]"
        elif kind == "comma_space":
            text = text + " "
        elif kind == "minus":
            text = f"[-{seg},{cnt}]"
        elif kind == "float":
            text = f"[{seg},{cnt}.0]"
        elif kind == "cut":
            text = text[: draw(st.integers(0, len(text) - 1))]
        parts.append(text)
        seg += 1
    return ("[" + ",".join(parts) + "]" + draw(st.sampled_from(["", "", " ", "]", ","]))).encode()


@pytest.mark.skipif(not hasattr(pf._fastplay, "guess_walk") or not pf._fastplay.guess_walk(1, 1, 2, 1),
                    reason="no SSE2: the parser makes no guesses")
@settings(max_examples=300, deadline=None)
@given(seg=st.sampled_from([1, 9, 10, 99, 189, 999, 43_195, 9_999_990, 99_999_999_990]) | st.integers(1, 10**12),
       cnt=st.sampled_from([0, 1, 9, 10, 99, 2**31 - 1]) | st.integers(0, 2**31 - 1),
       limit=st.sampled_from([0, 3, 40, 10**13]), steps=st.integers(1, 1200), from_text=st.booleans())
def test_each_guess_is_the_text_of_the_pair_it_stands_for(seg, cnt, limit, steps, from_text):
    """Every guess the parser compares with a K_J (made anew, or from the text of the pair it has just read; then
    counted up in a register, carries from a table) is exactly ``[<segment>,<count>],`` of the segment and count
    it records when the text matches; none past the segment limit, or longer than the 16 bytes compared."""
    seg = max(seg, 2) if from_text else seg
    seg_max = seg + limit
    walk = pf._fastplay.guess_walk(seg, cnt, seg_max, steps, from_text)
    for k, (text, s, c, skip) in enumerate(walk):
        want = f"[{seg + k},{cnt}],".encode()
        if seg + k > seg_max or len(want) > 16:
            assert (text, s, c, skip) == (None, None, None, None) and k == len(walk) - 1
        else:
            assert (text, s, c, skip) == (want, seg + k, cnt, len(want))
    assert len(walk) == steps or walk[-1][0] is None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(runs_of_pairs(), min_size=1, max_size=12, unique=True), arrow=st.booleans())
@example(values=[b"[[8,1],[9,1],[10,1],[11,1],[12,1],[13,1],[14,1],[15,1],[16,1],[17,1],[18,1],[19,1],[20,1]]",
                 b"[[97,2],[98,2],[99,2],[100,2],[101,2],[102,2],[103,2],[104,2],[105,2],[106,2]]",
                 b"[[43195,1],[43196,1],[43197,1],[43198,1],[43199,1],[43200,1],[43201,1]]",
                 b"[[188,1],[189,1],[190,1],[191,1],[192,1],[193,1],[194,1],[195,1],[196,1],[197,1],[198,1],[199,1],"
                 b"[200,1],[201,1]]"], arrow=True)
def test_runs_of_consecutive_pairs_decode_as_the_python_rule_says(values, arrow, monkeypatch):
    """The C parser's guess of the next pair (the segment one more, the same count, compared 16 bytes at once)
    gives what the Python rule gives, whether the pairs follow the guess or not, from a list or Arrow input."""
    if arrow:
        fast, fast_reasons = pf.segment_table(pa.array(values, pa.binary()))
        _, (slow, slow_reasons) = both_tables(values, monkeypatch)
    else:
        (fast, fast_reasons), (slow, slow_reasons) = both_tables(values, monkeypatch)
    assert fast_reasons == slow_reasons
    assert per_value(fast) == per_value(slow)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plays=st.lists(st.tuples(st.sampled_from(["1000001", "1000002", "2000001", "1000001é", "0"]),
                                st.lists(st.tuples(st.integers(1, 60), st.integers(0, 3)), max_size=8)), max_size=30),
       big=st.integers(0, 3))
def test_c_segment_sums_equal_the_numpy_ones(plays, big, monkeypatch):
    values = list(dict.fromkeys(ujson.dumps([list(p) for p in kj]) for _, kj in plays))
    if big:
        values.append(f"[[{big * 1000},{big}],[1,1]]")
    codes = {v: i for i, v in enumerate(values)}
    vid = [v for v, _ in plays] + (["1000002"] if big else [])
    jcode = np.array([codes[ujson.dumps([list(p) for p in kj])] for _, kj in plays] + ([len(values) - 1] if big else []),
                     dtype=np.int64)
    table, _ = pf.segment_table(values)
    fast = pd.segment_sums(vid, jcode, table)
    monkeypatch.setattr(pf, "HAVE_FAST", False)
    slow = pd.segment_sums(vid, jcode, table)
    assert fast.equals(slow)
    assert fast.schema == pd.SEG_SCHEMA


def test_decode_columns_is_the_same_on_hostile_plays(monkeypatch):
    s = ujson.dumps({"starttime": "t", "country": "CN", "region": 44, "city": "深圳", "ip": "1.1.1.1", "os": "o",
                     "browser": "b", "flow": 10, "comprate": 0.5}).encode()
    j = [b"[[1,1],[2,1]]", b"[[1,1],[2,1]]", None, b"[[0,1]]", b"[[1,1]", "[[4,2],[5,2]]", b"[[2147483648,1]]",
         b"[[9,1],[10,1],[10,1]]", b"[]"]
    keys = [f"1000001_{i}" for i in range(len(j))]
    fast = pd.decode_columns(keys, [s] * len(j), j, [None] * len(j))
    monkeypatch.setattr(pf, "HAVE_FAST", False)
    pd._J_CACHE.clear()  # noqa: SLF001
    slow = pd.decode_columns(keys, [s] * len(j), j, [None] * len(j))
    assert fast.quarantine == slow.quarantine
    assert fast.pos.tolist() == slow.pos.tolist()
    assert fast.columns["Htmap"] == slow.columns["Htmap"] == ["[[0,4,1]]", "[[0,4,1]]", "[[6,10,2]]", "[[16,20,1],[18,20,1]]",
                                                              "[]"]
    for a, b in ((fast, slow),):
        sa = pd.segment_sums(a.columns["vid"], a.columns["jcode"], a.segtab)
        sb = pd.segment_sums(b.columns["vid"], b.columns["jcode"], b.segtab)
        assert sa.equals(sb)


def _arrow(values: list, cut: int, pad: int):
    """``values`` as a chunked Arrow ``binary`` array: two chunks split at ``cut``, each a slice of a larger
    array (``pad`` values before it), so that the chunks' offsets do not start at 0."""
    import pyarrow as pa

    filler = [b"[[9,9]]"] * pad
    chunks = [pa.array(filler + part + filler, pa.binary()).slice(pad, len(part))
              for part in (values[:cut], values[cut:])]
    return pa.chunked_array(chunks, pa.binary())


BYTES = st.one_of(kj_texts().map(lambda v: v if isinstance(v, bytes) else v.encode("utf-8", "surrogatepass")),
                  st.binary(max_size=30), st.sampled_from([b"\xff[[1,1]]", b"{}", b"null", b"[[1]]", b""]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.one_of(BYTES, st.none()), max_size=20), cut=st.integers(0, 20), pad=st.integers(0, 3))
def test_c_parser_reads_arrow_buffers_in_place_as_it_reads_a_list(values, cut, pad):
    """``K_J`` handed over as the Arrow array it was fetched into (chunked, sliced, with nulls) gives the very
    table the list of its ``bytes`` gives, nulls left out: reasons, ``Htmap`` texts, segments and counts."""
    arr = _arrow(values, min(cut, len(values)), pad)
    assert pf.arrow_values(arr)
    pd._J_CACHE.clear()  # noqa: SLF001
    got, got_reasons = pf.segment_table(arr)
    pd._J_CACHE.clear()  # noqa: SLF001
    want, want_reasons = pf.segment_table([v for v in values if v is not None])
    assert got_reasons == want_reasons
    assert per_value(got) == per_value(want)


@pytest.mark.parametrize("fast", [True, False])
def test_decode_columns_takes_k_j_as_arrow_or_as_a_list(fast, monkeypatch):
    """A chunk's ``K_J`` as an Arrow array (nulls, a malformed value, values the Python rule decides) decodes
    exactly as the same values in a list, with the C parser and without it."""
    monkeypatch.setattr(pf, "HAVE_FAST", fast)
    s = ujson.dumps({"starttime": "t", "country": "CN", "region": 44, "city": "深圳", "ip": "1.1.1.1", "os": "o",
                     "browser": "b", "flow": 10, "comprate": 0.5}).encode()
    j = [b"[[1,1],[2,1]]", None, b"[[0,1]]", b"[[1,1]", b"[ [4,2] ,[5,2]]", b"[[2147483648,1]]",
         b"[[9,1],[10,1],[10,1]]", b"[]", None, b"\xff"]
    keys = [f"1000001_{i}" for i in range(len(j))]
    want = pd.decode_columns(keys, [s] * len(j), j, [None] * len(j))
    pd._J_CACHE.clear()  # noqa: SLF001
    got = pd.decode_columns(keys, [s] * len(j), _arrow(j, 4, 2), [None] * len(j))
    assert got.quarantine == want.quarantine and got.quarantine["J"][:2] == [None, b"[[0,1]]"]
    assert got.pos.tolist() == want.pos.tolist()
    assert {k: list(v) for k, v in got.columns.items()} == {k: list(v) for k, v in want.columns.items()}
    assert per_value(got.segtab) == per_value(want.segtab)
