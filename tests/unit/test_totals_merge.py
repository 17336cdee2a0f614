"""The running totals' ``vid_seg`` step (``include.plays.totals._seg_add``): summed by the ingest's
``sum_segment_tables``, whatever the rows' order, to exactly what pandas' grouped fold gives (``add_kind``);
what it cannot pack (nulls, segments outside [0, 2**32)) goes to that grouped fold."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import include.plays.totals as totals
from video_analytics import totals as tot
from video_analytics.play_decode import SEG_SCHEMA

VIDS = st.text(st.characters(codec="utf-8"), max_size=4)
COUNTS = st.tuples(st.integers(-(2**50), 2**50), st.integers(0, 2**31))


def _rows(segs):
    return st.dictionaries(st.tuples(VIDS, segs), COUNTS, max_size=40)


def _table(rows: dict, order: list[int] | None = None) -> pa.Table:
    keys = sorted(rows)
    keys = [keys[i] for i in order] if order is not None else keys
    return pa.table({"vid": [k[0] for k in keys], "seg": [k[1] for k in keys],
                     "heat": [rows[k][0] for k in keys], "plays": [rows[k][1] for k in keys]}, schema=SEG_SCHEMA)


def _grouped(total: pa.Table, day: pa.Table) -> pa.Table:
    """The fold's definition: per (vid, seg), sorted, the sums of both (``add_kind`` with neither empty)."""
    both = pa.concat_tables([total, day]).to_pandas()
    out = both.groupby(["vid", "seg"], sort=True)[["heat", "plays"]].sum().reset_index()
    return pa.Table.from_pandas(out, schema=SEG_SCHEMA, preserve_index=False)


@pytest.fixture
def grouped_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(tot, "add_kind", lambda *a: calls.append(1) or tot._add(*a))
    return calls


@settings(max_examples=300, deadline=None)
@given(_rows(st.integers(0, 2**32 - 1)), _rows(st.integers(0, 2**32 - 1)), st.data())
def test_the_sum_equals_the_grouped_fold_in_any_row_order(a, b, data):
    total = _table(a, data.draw(st.permutations(range(len(a)))))
    day = _table(b, data.draw(st.permutations(range(len(b)))))
    want = _grouped(total, day)
    calls = []
    add_kind, tot.add_kind = tot.add_kind, lambda *x: calls.append(1) or add_kind(*x)
    try:
        got = totals._seg_add(total, day)
    finally:
        tot.add_kind = add_kind
    assert not calls  # summed, not grouped
    assert got.schema == SEG_SCHEMA and got.equals(want)
    assert got.num_rows == len(set(a) | set(b))


@pytest.mark.parametrize("seg", [-1, 2**32, 2**62])
def test_segments_it_cannot_pack_go_to_the_grouped_fold(grouped_calls, seg):
    t = _table({("a", 1): (5, 1), ("b", seg): (7, 2)})
    got = totals._seg_add(t, t)
    assert grouped_calls
    assert got.to_pylist() == [{"vid": "a", "seg": 1, "heat": 10, "plays": 2},
                               {"vid": "b", "seg": seg, "heat": 14, "plays": 4}]


def test_nulls_are_not_packed():
    t = _table({("a", 1): (5, 1)})
    assert totals._packable(t) and totals._packable(SEG_SCHEMA.empty_table())
    for c in ("vid", "seg", "heat", "plays"):
        nulled = t.set_column(t.schema.get_field_index(c), c, pa.array([None], SEG_SCHEMA.field(c).type))
        assert not totals._packable(nulled)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(VIDS, st.integers(0, 2**32 - 1), st.integers(-(2**50), 2**50), st.integers(0, 2**31)),
                max_size=40), st.booleans(), st.integers(1, 5))
def test_one_table_alone_is_summed_or_kept_as_it_is(rows, in_order, chunks):
    """Onto an empty state, a table comes back as it is when its (vid, seg) rows are strictly increasing (any
    chunking), else summed and sorted: repeated keys and any order give the grouped fold's rows."""
    rows = sorted(rows) if in_order else rows
    cols = {"vid": [r[0] for r in rows], "seg": [r[1] for r in rows], "heat": [r[2] for r in rows],
            "plays": [r[3] for r in rows]}
    step = max(1, -(-len(rows) // chunks))
    day = pa.Table.from_batches([pa.record_batch({k: v[i: i + step] for k, v in cols.items()}, schema=SEG_SCHEMA)
                                 for i in range(0, len(rows), step)], schema=SEG_SCHEMA)
    got = totals._seg_add(SEG_SCHEMA.empty_table(), day)
    want = _grouped(SEG_SCHEMA.empty_table(), day)
    assert got.schema == SEG_SCHEMA and got.equals(want)
    keys = [(r[0].encode(), r[1]) for r in rows]
    if all(x < y for x, y in zip(keys, keys[1:], strict=False)):
        assert got.equals(day)
