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


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(ROW, max_size=25), min_size=2, max_size=10), st.sampled_from([0, 40, 3000, 1 << 25]))
def test_blocks_left_behind_are_reclaimed_before_the_array_grows(rows, max_cells):
    """Blocks that grew leave their old cells behind; before the flat array grows (or the sums go sparse),
    the live blocks are moved down over them (``_compact``): the same sums, and the array holds no more than
    the live blocks need (a 5M day's decoder kept 26.3M cells for 20.6M live ones, 8 bytes each)."""
    import numpy as np

    chunks = [_chunk(r) for r in rows]
    sums = SegmentSums(max_cells, 10)
    sums.heat, sums.plays = np.zeros(4, dtype=np.int32), np.zeros(4, dtype=np.int32)  # grows from 4 cells
    for c in chunks:
        sums.add(c)
    assert sums.table().equals(_reference(chunks))
    if sums.parts is None:
        live = int(sums.cap[: len(sums.ids)].sum())
        assert sums.used <= len(sums.heat) <= max(4, live + live // 4 + 1, sums.used + sums.used // 4 + 1)


def test_a_grown_blocks_old_cells_are_reused():
    import numpy as np

    sums = SegmentSums()
    sums.heat, sums.plays = np.zeros(4, dtype=np.int32), np.zeros(4, dtype=np.int32)
    steps = [[("a", 3, 5, 1)], [("a", 10, 7, 2), ("a", 3, 1, 1)], [("b", 2, 4, 1)], [("a", 40, 1, 1), ("b", 9, 2, 3)]]
    for rows in steps:
        sums.add(_chunk(rows))
    assert sums.used == int(sums.cap[: len(sums.ids)].sum())  # no cells left behind
    assert sums.table().equals(_reference([_chunk(r) for r in steps]))
