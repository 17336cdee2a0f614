"""The day's per-(vid, segment) sums (``play_fast.SegmentSums``, ``sum_segment_tables``) equal an Arrow
``group_by`` + ``sort_by`` of every chunk's rows, dense or sparse, whatever the order and growth of the chunks."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from video_analytics.play_decode import SEG_SCHEMA
from video_analytics.play_fast import SegmentSums, sum_segment_tables

ROW = st.tuples(st.sampled_from(["1000001", "1000002", "2000001", "é000001", "Z", "a"]),
                st.one_of(st.integers(1, 40), st.integers(1, 5000)), st.integers(0, 2**40), st.integers(1, 2**20))


def _chunk(rows) -> pa.Table:
    """One chunk's sums: unique (vid, segment) rows, as a decoder writes them."""
    seen = {}
    for vid, seg, heat, plays in rows:
        seen.setdefault((vid, seg), (heat, plays))
    vid, seg = zip(*seen, strict=True) if seen else ((), ())
    heat, plays = zip(*seen.values(), strict=True) if seen else ((), ())
    return pa.table([pa.array(vid, pa.string()), pa.array(seg, pa.int64()), pa.array(heat, pa.int64()),
                     pa.array(plays, pa.int64())], schema=SEG_SCHEMA)


def _reference(chunks: list[pa.Table]) -> pa.Table:
    t = pa.concat_tables([SEG_SCHEMA.empty_table(), *chunks]).group_by(["vid", "seg"]).aggregate(
        [("heat", "sum"), ("plays", "sum")])
    t = t.rename_columns({"heat_sum": "heat", "plays_sum": "plays"}).select(SEG_SCHEMA.names).cast(SEG_SCHEMA)
    return t.sort_by([("vid", "ascending"), ("seg", "ascending")])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(ROW, max_size=25), max_size=8), st.sampled_from([0, 50, 3000, 1 << 25]),
       st.sampled_from([1, 10, 1 << 19]))
def test_segment_sums_equal_a_group_by(rows, max_cells, merge_rows):
    chunks = [_chunk(r) for r in rows]
    sums = SegmentSums(max_cells, merge_rows)
    for c in chunks:
        sums.add(c)
    expected = _reference(chunks)
    assert sums.table().equals(expected)
    assert sum_segment_tables(chunks).equals(expected)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(ROW, max_size=25), max_size=8), st.sampled_from([0, 50, 3000, 1 << 25]),
       st.sampled_from([1, 7, 64, 1 << 20]))
def test_the_sums_block_by_block_equal_the_whole_table(rows, max_cells, block_rows):
    """``blocks`` gives the day's sums vid range by vid range (what ``segments.parquet``'s row groups hold): in
    order, they are the whole sorted table, dense or sparse, each block at most ``block_rows`` rows unless one
    vid alone has more (dense: whole pages of a vid range)."""
    chunks = [_chunk(r) for r in rows]
    sums = SegmentSums(max_cells, 10)
    for c in chunks:
        sums.add(c)
    blocks = list(sums.blocks(block_rows))
    expected = _reference(chunks)
    assert pa.concat_tables([SEG_SCHEMA.empty_table(), *blocks]).combine_chunks().equals(expected)
    if sums.parts is None:  # dense: a block ends at a vid's end
        ends = [b.column("vid")[-1].as_py() for b in blocks[:-1] if b.num_rows]
        starts = [b.column("vid")[0].as_py() for b in blocks[1:] if b.num_rows]
        assert all(a < b for a, b in zip(ends, starts, strict=False))


def test_segments_far_apart_take_a_page_each_not_a_block_between():
    """A vid with segments 1 and 43,200 (24 hours apart) costs two pages of cells, not 43,200: such days stay
    on the dense path, whose memory grows with the segments present."""
    sums = SegmentSums(max_cells=1 << 10)
    far = pa.table([pa.array(["1000001", "1000001", "1000002"]), pa.array([1, 43_200, 5]),
                    pa.array([3, 2**40, 1]), pa.array([1, 2, 1])], schema=SEG_SCHEMA)
    sums.add(far)
    sums.add(far)
    assert sums.parts is None and len(sums.pkeys) == 3
    assert sums.table().to_pylist() == [
        {"vid": "1000001", "seg": 1, "heat": 6, "plays": 2}, {"vid": "1000001", "seg": 43_200, "heat": 2**41, "plays": 4},
        {"vid": "1000002", "seg": 5, "heat": 2, "plays": 2}]
