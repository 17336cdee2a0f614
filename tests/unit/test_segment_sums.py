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
