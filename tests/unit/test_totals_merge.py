"""``vid_seg``'s merge fold (``video_analytics.totals.add_seg_sorted``) gives exactly what the grouped fold
(``add_kind``) gives for sorted, unique keys, and declines anything else."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from include.plays.totals import SEG_FILE_SCHEMA
from video_analytics import totals as tot

VIDS = st.text(st.characters(codec="utf-8"), max_size=4)
ROWS = st.dictionaries(st.tuples(VIDS, st.integers(-(2**40), 2**40)),
                       st.tuples(st.integers(-(2**50), 2**50), st.integers(0, 2**31)), max_size=40)


def _table(rows: dict) -> pa.Table:
    keys = sorted(rows)  # Python's order for text: the grouped fold's
    return pa.table({"vid": [k[0] for k in keys], "seg": [k[1] for k in keys],
                     "heat": [rows[k][0] for k in keys], "plays": [rows[k][1] for k in keys]}, schema=SEG_FILE_SCHEMA)


def _grouped(total: pa.Table, day: pa.Table) -> pd.DataFrame:
    return tot.add_kind("vid_seg", total.to_pandas(), day.to_pandas())


@settings(max_examples=300, deadline=None)
@given(ROWS, ROWS)
def test_the_merge_equals_the_grouped_fold(a, b):
    total, day = _table(a), _table(b)
    got = tot.add_seg_sorted(total, day)
    assert got is not None and got.schema == SEG_FILE_SCHEMA
    want = pa.Table.from_pandas(_grouped(total, day), schema=SEG_FILE_SCHEMA, preserve_index=False)
    assert got.equals(want)
    assert got.num_rows == len(set(a) | set(b))


@settings(max_examples=100, deadline=None)
@given(ROWS.filter(lambda r: len(r) > 1), st.data())
def test_unsorted_or_repeated_keys_are_declined(rows, data):
    t = _table(rows)
    i = data.draw(st.integers(0, t.num_rows - 2))
    swapped = t.take([*range(i), i + 1, i, *range(i + 2, t.num_rows)])
    repeated = t.take([*range(i + 1), i, *range(i + 1, t.num_rows)])
    for bad in (swapped, repeated):
        assert tot.add_seg_sorted(bad, t) is None
        assert tot.add_seg_sorted(t, bad) is None
    nulls = t.set_column(2, "heat", pa.array([None] * t.num_rows, pa.int64()))
    assert tot.add_seg_sorted(t, nulls) is None


def test_segments_far_apart_are_declined_not_wrapped():
    t = pa.table({"vid": ["a", "b"], "seg": [-(2**62), 2**62], "heat": [1, 2], "plays": [1, 1]},
                 schema=SEG_FILE_SCHEMA)
    assert tot.add_seg_sorted(t, t) is None
