"""Verify's sort-based equality checks (no day-sized hash tables): ``include.plays.verify._codes`` gives equal codes
exactly for equal values, and ``checks.distinct_rows`` agrees with pandas' ``duplicated``."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from include.plays.verify import _codes, _dictionary_codes
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
    assert distinct_rows(df["vid"], df["playid"]) == (not df.duplicated(["vid", "playid"]).any())
