"""Parquet and JSON-lines helpers for a day's plays folder (``plays/<D>/``)."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from include.storage import DataRoot
from video_analytics.conventions import plays_path

CONTRIB_KINDS = ("vid", "vid_region", "vid_seg", "uid", "uid_region", "kid", "kid_region")
DOC_KINDS = ("vdaily", "daily", "type", "stat")


def chunks(seq, n: int):
    for i in range(0, len(seq), n):
        yield seq[i: i + n]


def write_frame(root: DataRoot, df: pd.DataFrame, rel: str, schema: dict | None = None) -> None:
    """A frame as Parquet; ``schema`` names the Arrow type of some columns."""
    arrays, names = [], []
    for c in df.columns:
        typ = (schema or {}).get(c)
        vals = df[c]
        if typ is not None:
            arrays.append(pa.array(vals.tolist() if vals.dtype == object else vals, type=typ))
        else:
            arrays.append(pa.array(vals, from_pandas=True))
        names.append(c)
    root.write_table(pa.Table.from_arrays(arrays, names=names), rel)


def per_play_options(names, unique) -> dict:
    """``ParquetStream`` options for a table of plays: the columns in ``unique`` ((nearly) one value per play)
    plain and without statistics (a dictionary and min/max of unique strings cost time and filter nothing);
    the rest dictionary-encoded, with statistics (row groups can be skipped by vid, uid, region, ...)."""
    few = [c for c in names if c not in unique]
    return {"dictionary": few, "write_statistics": few}


class ParquetStream:
    """A Parquet file written row group by row group (bounded memory), published atomically on ``close``
    (``DataRoot.stage``: renamed from a temporary name on a local disk; on an object store, staged in an
    unnamed local file and uploaded in one PUT, never a temporary object and a copy); ``abort`` drops it.
    Also a context manager."""

    def __init__(self, root: DataRoot, rel: str, schema: pa.Schema, dictionary=None, **options) -> None:
        """``dictionary``: the columns worth dictionary-encoding (few distinct values); default all.
        ``options``: more ``pq.ParquetWriter`` options (e.g. ``compression``)."""
        self.root, self.schema, self.rows = root, schema, 0
        self.path = root.path(rel)
        self.staged = root.stage(rel)  # a local disk: creates the folder and sweeps dead writers' leftovers
        try:
            with root.writing(self.path):
                self.writer = pq.ParquetWriter(self.staged.fh, schema,
                                               use_dictionary=True if dictionary is None else list(dictionary),
                                               **options)
        except BaseException:
            self.staged.abort()
            raise

    def write(self, table: pa.Table) -> None:
        if table.num_rows:
            with self.root.writing(self.path):
                self.writer.write_table(table.select(self.schema.names).cast(self.schema), row_group_size=1 << 20)
            self.rows += table.num_rows

    def close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            try:
                with self.root.writing(self.path):
                    writer.close()
            except BaseException:
                self.staged.abort()
                raise
            self.staged.commit()

    def abort(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            try:
                writer.close()
            finally:
                self.staged.abort()

    def __enter__(self) -> ParquetStream:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def parquet_file(fh, **kw) -> pq.ParquetFile:
    """A Parquet file to read batch by batch: without pre-buffering, which keeps the column chunks of every
    row group read so far until the end (about 300 MiB over a 5M-play ``plays.parquet``; bench/README)."""
    return pq.ParquetFile(fh, pre_buffer=False, **kw)


def iter_batches(root: DataRoot, rel: str, rows: int, columns=None):
    """A Parquet file's rows as ``pyarrow.RecordBatch`` es of at most ``rows`` rows."""
    with root.fs.open(root.path(rel), "rb") as fh:
        yield from parquet_file(fh).iter_batches(batch_size=rows, columns=columns)


def stored_rows(root: DataRoot, rel: str) -> int:
    """The rows of a stored Parquet file (from its footer), 0 when there is none."""
    if not root.exists(rel):
        return 0
    with root.fs.open(root.path(rel), "rb") as fh:
        return parquet_file(fh).metadata.num_rows


def stored_columns(root: DataRoot, rel: str) -> list[str]:
    """The column names of a stored Parquet file (from its footer)."""
    p = root.path(rel)
    with root.reading(p, "Parquet"), root.fs.open(p, "rb") as fh:
        return parquet_file(fh).schema_arrow.names


def read_frame(root: DataRoot, rel: str, columns=None) -> pd.DataFrame:
    return root.read_table(rel, columns=columns).to_pandas()


def encode_mixed(df: pd.DataFrame, cols) -> pd.DataFrame:
    """Columns whose values are not all strings are stored JSON-encoded as ``<col>__json``."""
    for c in cols:
        vals = df[c].tolist()
        if not all(type(v) is str for v in vals):
            df[c + "__json"] = [json.dumps(v) for v in vals]
            df = df.drop(columns=[c])
    return df


def decode_mixed(df: pd.DataFrame) -> pd.DataFrame:
    for c in [c for c in df.columns if c.endswith("__json")]:
        df[c[:-6]] = pd.Series([json.loads(v) for v in df[c].tolist()], dtype=object, index=df.index)
        df = df.drop(columns=[c])
    return df


def stored_days(root: DataRoot, marker: str) -> list[str]:
    """Days that have ``plays/<day>/<marker>``."""
    depth = len(marker.split("/")) + 1
    return sorted(p.rstrip("/").split("/")[-depth] for p in root.glob(plays_path("*", marker)))
