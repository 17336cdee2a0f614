"""Verify's sort-based equality checks (no day-sized hash tables): ``include.plays.verify._codes`` gives equal codes
exactly for equal values, and ``checks.distinct_rows`` agrees with pandas' ``duplicated``."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from include.plays import verify
from include.plays.verify import _codes, _dictionary_codes, _distinct_codes
from include.storage import DataRoot
from video_analytics.checks import distinct_rows

TEXT = st.text(alphabet="ab_é1", max_size=4)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(TEXT, max_size=6), max_size=4))
def test_codes_are_equal_exactly_for_equal_values(chunks):
    col = pa.chunked_array([pa.array(c, pa.string()) for c in chunks], pa.string())
    values = col.to_pylist()
    codes = _codes(col).tolist()
    assert len(codes) == len(values)
    assert all((codes[i] == codes[j]) == (values[i] == values[j]) for i in range(len(values)) for j in range(len(values)))


def _equal_exactly(codes, values) -> bool:
    return all((codes[i] == codes[j]) == (values[i] == values[j]) for i in range(len(values)) for j in range(len(values)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(TEXT, max_size=6), max_size=4), st.booleans())
def test_distinct_codes_are_equal_exactly_for_equal_values(chunks, collide):
    """The keys' codes: their hashes when those are all distinct, else ``_codes``. ``collide`` makes every hash
    the same (as a collision would), so distinct values must still get distinct codes."""
    col = pa.chunked_array([pa.array(c, pa.string()) for c in chunks], pa.string())
    real = verify.key_hashes
    with mock.patch.object(verify, "key_hashes", (lambda a: real(a) & np.uint64(0)) if collide else real):
        codes = _distinct_codes(col).tolist()
    assert len(codes) == len(col)
    assert _equal_exactly(codes, col.to_pylist())


def test_distinct_codes_of_distinct_keys_are_their_hashes():
    """No sort of the strings when the hashes are distinct (the point of it: ~1 s of a 1M-play day's verify)."""
    col = pa.chunked_array([pa.array([f"k{i}" for i in range(1000)]), pa.array(["é", "x/../y"])])
    codes = _distinct_codes(col)
    assert codes.dtype == np.uint64 and len(set(codes.tolist())) == 1002
    assert codes.tolist() == np.concatenate([verify.key_hashes(c) for c in col.chunks]).tolist()


@settings(max_examples=100, deadline=None)
@given(chunks=st.lists(st.lists(st.one_of(TEXT, st.none()), max_size=6), max_size=4), dictionary=st.booleans())
@example(chunks=[["a", "b"], ["b", "é", "a"]], dictionary=True)
def test_dictionary_codes_are_equal_exactly_for_equal_values(tmp_path_factory, chunks, dictionary):
    """The ``vid`` codes come from the row groups' dictionary pages (each its own dictionary, unified); a null or
    a column stored without dictionary takes ``_codes``."""
    import pyarrow.parquet as pq

    root = DataRoot(str(tmp_path_factory.mktemp("codes")))
    with pq.ParquetWriter(root.path("p.parquet"), pa.schema([("vid", pa.string())]), use_dictionary=dictionary) as w:
        for c in chunks:
            w.write_table(pa.table({"vid": pa.array(c, pa.string())}))
    values = [v for c in chunks for v in c]
    codes = _dictionary_codes(root, "p.parquet", "vid").tolist()
    want = _codes(pa.chunked_array([pa.array(values, pa.string())])).tolist()  # a null equals nothing, as there
    assert len(codes) == len(values)
    assert all((codes[i] == codes[j]) == (want[i] == want[j]) for i in range(len(values)) for j in range(len(values)))
    if None not in values:
        assert all((codes[i] == codes[j]) == (values[i] == values[j])
                   for i in range(len(values)) for j in range(len(values)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(TEXT, st.integers(-2, 2)), max_size=12))
def test_distinct_rows_agrees_with_pandas(rows):
    df = pd.DataFrame(rows, columns=["vid", "playid"]).astype({"playid": "int64"})
    assert distinct_rows(df["vid"]) == df["vid"].is_unique
    assert distinct_rows(df["playid"]) == df["playid"].is_unique  # one column of numbers: a plain sort
    assert distinct_rows(df["playid"].to_numpy().astype(np.uint64)) == df["playid"].is_unique
    assert distinct_rows(df["vid"], df["playid"]) == (not df.duplicated(["vid", "playid"]).any())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.integers(-1, 4), st.sampled_from([2**20, 2**31 - 1])),
                          st.one_of(st.integers(-1, 8), st.sampled_from([2**31, 2**42 + 1, 2**62, 2**63 - 1]))),
                max_size=12),
       st.sampled_from([np.int64, np.int32, np.uint64]))
def test_distinct_rows_of_two_integer_columns(rows, dtype):
    """Two columns of integers (codes and play ids) packed into one where they fit, by ``lexsort`` where they do
    not (negative values, more than 63 bits): the same answer as pandas either way."""
    df = pd.DataFrame(rows, columns=["vid", "playid"], dtype=object)
    try:
        a, b = (np.asarray(df[c].tolist(), dtype=np.int64).astype(dtype) for c in ("vid", "playid"))
    except OverflowError:
        return
    if any(int(x) != y for x, y in zip(a.tolist() + b.tolist(), df["vid"].tolist() + df["playid"].tolist(),
                                       strict=True)):
        return  # the value does not survive the cast: not this dtype's case
    want = not pd.DataFrame({"a": a, "b": b}).duplicated().any()
    assert distinct_rows(a, b) == want
    assert distinct_rows(pd.Series(a), pd.Series(b)) == want
