"""The decoders' running segment sums (``SegmentSums.add_plays``, in C), their block-wise merge
(``merge_sorted_sums``) and the C reader of MGET replies (``resp_mget``, ``resp_mget_command``)."""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa
import pytest
import ujson
from hypothesis import given, settings
from hypothesis import strategies as st

from video_analytics import play_decode as pd
from video_analytics import play_fast as pf

pytestmark = pytest.mark.skipif(not pf.HAVE_FAST, reason="the C module is not built here")

VIDS = ["1000001", "1000002", "2000001", "1000001é", "0"]
PLAY = st.tuples(st.sampled_from(VIDS), st.lists(st.tuples(st.integers(1, 80), st.integers(0, 3)), max_size=8))


def _chunk(plays):
    values = list(dict.fromkeys(ujson.dumps([list(p) for p in kj]) for _, kj in plays))
    codes = {v: i for i, v in enumerate(values)}
    table, _ = pf.segment_table(values)
    jcode = np.array([codes[ujson.dumps([list(p) for p in kj])] for _, kj in plays], dtype=np.int64)
    return [v for v, _ in plays], jcode, table


@settings(max_examples=150, deadline=None)
@given(chunks=st.lists(st.lists(PLAY, max_size=20), max_size=5), max_cells=st.sampled_from([0, 50, 200, 1 << 25]))
def test_add_plays_equals_adding_each_chunks_table(chunks, max_cells):
    by_table, direct = pf.SegmentSums(max_cells, 40), pf.SegmentSums(max_cells, 40)
    for plays in chunks:
        vid, jcode, table = _chunk(plays)
        by_table.add(pd.segment_sums(vid, jcode, table))
        if not direct.add_plays(vid, jcode, table):  # past max_cells: the caller adds the table
            direct.add(pd.segment_sums(vid, jcode, table))
    assert direct.table().equals(by_table.table())


def test_add_plays_refuses_what_it_cannot_add_and_adds_nothing():
    sums = pf.SegmentSums(10, 40)
    vid, jcode, table = _chunk([("1000001", [(1, 2), (2, 1)])])
    assert sums.add_plays(vid, jcode, table)
    far, fcode, ftable = _chunk([("1000002", [(70, 1)])])
    assert not sums.add_plays(far, fcode, ftable)  # 71 cells would pass max_cells
    assert sums.table().to_pylist() == [{"vid": "1000001", "seg": 1, "heat": 2, "plays": 1},
                                        {"vid": "1000001", "seg": 2, "heat": 1, "plays": 1}]
    bad = pd.SegmentTable(["[]"], np.array([1]), np.array([0]), np.array([0], dtype=np.int32),
                          np.array([1], dtype=np.int32))  # segment 0: outside [1, SUMS_MAX_SEGMENT]
    assert not pf.SegmentSums().add_plays(["1000001"], np.array([0]), bad)


@pytest.mark.parametrize("at", [0, 5, 16, 33])
@pytest.mark.parametrize("bad", [0, -1, 101, 2**31 - 1, -(2**31)])
def test_sums_need_finds_a_segment_out_of_range_anywhere_in_a_play(at, bad):
    """``sums_need`` (each play's largest segment, a min/max over its entries without a branch per entry) refuses
    a play with one segment outside [1, max_seg] wherever it is, and sizes the blocks from the largest."""
    segs = np.arange(67, 101, dtype=np.int32)  # 34 entries: more than one vector's width
    offsets, lengths = np.array([0, 0], dtype=np.int64), np.array([34, 0], dtype=np.int64)
    gid, jcode = np.array([1, 0], dtype=np.int64), np.array([0, 1], dtype=np.int64)
    need = np.zeros(2, dtype=np.int64)
    assert pf._fastplay.sums_need(gid, jcode, offsets, lengths, segs, need, 100) == 0  # noqa: SLF001
    assert need.tolist() == [0, 101]
    segs[at] = bad
    assert pf._fastplay.sums_need(gid, jcode, offsets, lengths, segs, np.zeros(2, dtype=np.int64), 100) == -1  # noqa: SLF001


@pytest.mark.parametrize("bad", ["gid", "jcode", "cell", "count", "overflow"])
def test_sums_add_takes_back_what_it_added_before_a_bad_play(bad):
    """``sums_add`` checks each play as it adds it: a bad index, cell or count at the third play raises
    ``ValueError`` and a cell past 2**31 - 1 returns -1, with the first two plays' additions taken back."""
    gid = np.array([0, 1, 0, 1], dtype=np.int64)
    jcode = np.array([0, 1, 1, 0], dtype=np.int64)
    offsets, lengths = np.array([0, 2], dtype=np.int64), np.array([2, 2], dtype=np.int64)
    segs, cnts = np.array([1, 2, 2, 3], dtype=np.int32), np.array([5, 1, 2, 7], dtype=np.int32)
    off = np.array([0, 4], dtype=np.int64)
    heat, plays = np.arange(8, dtype=np.int32) * 10, np.arange(8, dtype=np.int32)
    if bad == "gid":
        gid[2] = 9
    elif bad == "jcode":
        jcode[2] = -1
    elif bad == "cell":
        off = np.array([0, 4, 7], dtype=np.int64)
        gid[2] = 2  # segment 2 of a block at 7: cell 9 of 8
    elif bad == "count":
        cnts = np.array([5, 1, -2, 7], dtype=np.int32)  # the first play's entries are fine; the second's is not
        jcode = np.array([0, 0, 1, 0], dtype=np.int64)
    else:
        heat[4 + 3] = 2**31 - 3  # the second play's cell (block 1, segment 3) would pass 2**31 - 1
    before = heat.copy(), plays.copy()
    args = (gid, jcode, offsets, lengths, segs, cnts, off, heat, plays)
    if bad == "overflow":
        assert pf._fastplay.sums_add(*args) == -1  # noqa: SLF001
    else:
        with pytest.raises(ValueError, match="out of range"):
            pf._fastplay.sums_add(*args)  # noqa: SLF001
    assert heat.tolist() == before[0].tolist() and plays.tolist() == before[1].tolist()
    heat, plays = before[0].copy(), before[1].copy()
    if bad != "overflow":
        return
    heat[7] = 0
    assert pf._fastplay.sums_add(gid, jcode, offsets, lengths, segs, cnts, off, heat, plays) == 0  # noqa: SLF001
    assert heat.tolist() == [0, 10 + 5, 20 + 1 + 2, 30 + 7, 40, 50 + 5, 60 + 2 + 1, 7]
    assert plays.tolist() == [0, 1 + 1, 2 + 2, 3 + 1, 4, 5 + 1, 6 + 2, 7 + 1]


ROWS = st.dictionaries(st.tuples(st.sampled_from(VIDS), st.integers(0, 9)),
                       st.tuples(st.integers(0, 5), st.integers(1, 3)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(sources=st.lists(st.tuples(ROWS, st.integers(1, 9)), min_size=1, max_size=3), min_rows=st.integers(1, 8))
def test_merge_sorted_sums_equals_summing_everything(sources, min_rows):
    parts = []
    for rows, batch in sources:
        keys = sorted(rows)
        t = pa.table({"vid": [v for v, _ in keys], "seg": [s for _, s in keys], "heat": [rows[k][0] for k in keys],
                      "plays": [rows[k][1] for k in keys]}, schema=pd.SEG_SCHEMA)
        parts.append(t.to_batches(max_chunksize=batch))
    want = pf.sum_segment_tables([pa.Table.from_batches(b, schema=pd.SEG_SCHEMA) for b in parts])
    blocks = list(pf.merge_sorted_sums(parts, min_rows=min_rows))
    got = pa.concat_tables(blocks) if blocks else pd.SEG_SCHEMA.empty_table()
    assert got.equals(want)
    firsts_lasts = [(b.column("vid")[0].as_py(), b.column("vid")[-1].as_py()) for b in blocks]
    assert all(a[1] < b[0] for a, b in zip(firsts_lasts, firsts_lasts[1:], strict=False))  # each vid whole in one block


def _arrays(reply):
    return [None if r[0] == "err" else pf_array(r) for r in reply]


def pf_array(r):
    n, nulls, valid, offsets, data = r
    typ = pa.binary() if len(offsets) == 4 * (n + 1) else pa.large_binary()
    return pa.Array.from_buffers(typ, n, [pa.py_buffer(valid) if nulls else None, pa.py_buffer(offsets),
                                          pa.py_buffer(data)], nulls).to_pylist()


def test_resp_mget_reads_resp2_and_resp3_replies():
    raw = b"*3\r\n$3\r\nabc\r\n$-1\r\n$4\r\na\r\nb\r\n" + b"*2\r\n_\r\n$0\r\n\r\n" + b"-WRONGTYPE no\r\n"
    replies, end = pf.resp_mget(raw, 0, len(raw), 3)
    assert end == len(raw)
    assert _arrays(replies)[:2] == [[b"abc", None, b"a\r\nb"], [None, b""]]
    assert replies[2] == ("err", b"WRONGTYPE no")
    for cut in range(len(raw)):  # every incomplete prefix: not yet
        assert pf.resp_mget(raw, 0, cut, 3) is None
    assert pf.resp_mget(b"xx" + raw, 2, len(raw) + 2, 1)[1] == 2 + raw.index(b"*2")


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(1, 60), max_size=12), pos=st.integers(0, 2))
def test_resp_mget_scans_on_from_where_it_stopped(cuts, pos):
    """With a state, each call scans only the bytes received since the last (the state holds the reply it has
    reached), and the replies are those of one scan of the whole, wherever the receives split them."""
    raw = b"x" * pos + b"*3\r\n$3\r\nabc\r\n$-1\r\n$4\r\na\r\nb\r\n" + b"-ERR no\r\n" + b"*2\r\n_\r\n$0\r\n\r\n"
    want, end = pf.resp_mget(raw, pos, len(raw), 3)
    state = pf.resp_state()
    filled = pos
    for c in [*cuts, len(raw)]:
        filled = min(len(raw), filled + c)
        out = pf.resp_mget(bytearray(raw[:filled]) + bytearray(8), pos, filled, 3, state)
        if filled < len(raw):
            assert out is None
            done = struct.unpack_from("<q", state)[0]  # replies scanned to their end
            assert done == sum(filled >= raw.index(m) + len(m) for m in (b"b\r\n", b"no\r\n"))
        else:
            assert out[1] == end and _arrays(out[0][::2]) == _arrays(want[::2]) and out[0][1] == ("err", b"ERR no")
            break
    with pytest.raises(ValueError, match="state"):
        pf.resp_mget(raw, pos, len(raw), 3, bytearray(8))


@pytest.mark.parametrize("garbage", [b"+OK\r\n", b"*1\r\n:5\r\n", b"*1\r\n$x\r\n", b"*1\r\n$3\r\nabcd\r\n",
                                     b"*-1\r\n", b"*1\r\n$99999999999999999999\r\n"])
def test_resp_mget_refuses_what_is_not_an_mget_reply(garbage):
    with pytest.raises(ValueError, match="not a Redis MGET reply"):
        pf.resp_mget(garbage, 0, len(garbage), 1)


def test_resp_mget_command_is_what_redis_py_sends():
    from redis.connection import PythonRespSerializer

    keys = ["1000001_a", "1000001_é", "x" * 300]
    want = b"".join(PythonRespSerializer(1 << 20, lambda v: v.encode() if isinstance(v, str) else v).pack(
        "MGET", *[k + "_J" for k in keys]))
    assert pf.resp_mget_command(keys, b"_J") == want
    assert pf.resp_mget_command([b"k"], b"_S") == b"*2\r\n$4\r\nMGET\r\n$3\r\nk_S\r\n"
    with pytest.raises(TypeError):
        pf.resp_mget_command([1], b"_S")


def test_a_cell_past_int32_is_summed_exactly_in_the_sparse_parts():
    big = 2**31 - 1
    vid, jcode, table = _chunk([("1000001", [(1, big), (2, 1)])])
    sums, by_table = pf.SegmentSums(), pf.SegmentSums()
    assert sums.add_plays(vid, jcode, table)
    assert not sums.add_plays(vid, jcode, table)  # 2 * (2**31 - 1): refused, nothing half-added
    assert sums.table().to_pylist()[0]["heat"] == big
    sums.add(pd.segment_sums(vid, jcode, table))  # what the decoder does then: exact, in int64 parts
    for _ in range(2):
        by_table.add(pd.segment_sums(vid, jcode, table))
    want = [{"vid": "1000001", "seg": 1, "heat": 2 * big, "plays": 2}, {"vid": "1000001", "seg": 2, "heat": 2, "plays": 2}]
    assert sums.table().to_pylist() == by_table.table().to_pylist() == want
    assert sums.parts is not None and not sums.add_plays(vid, jcode, table)  # sparse from then on


def test_tables_in_blocks_equal_the_whole_table():
    sums = pf.SegmentSums()
    plays = [(f"{1000000 + v}", [(s, 1) for s in range(1, 2 + v % 50)]) for v in range(300)]
    vid, jcode, table = _chunk(plays)
    assert sums.add_plays(vid, jcode, table)
    blocks = list(sums.tables(block_cells=64))
    assert len(blocks) > 10 and pa.concat_tables(blocks).equals(sums.table())
    assert pa.concat_tables(blocks).equals(pd.segment_sums(vid, jcode, table))
