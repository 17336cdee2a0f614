"""The legacy job's stat documents staged as the baseline's Parquet files (the snapshots' format, sorted by
key) in a local folder, in bounded memory whatever the dump's size (CONTRACT §7).

A ``<uid>_stat`` collection holds one uid's vids (at most 62**3). Its vid, region and segment rows are
appended in document order to local Arrow files (``_Spill``), ``FLUSH_ROWS`` rows at a time. Then they are
written in vid order: a spill of at most ``BUCKET_ROWS`` rows is read whole and taken in order; a larger
one is first split, batch by batch, into buckets of consecutive vids (in vid order) of about
``BUCKET_ROWS`` rows each, and each bucket is read and taken in order. What stays in memory: a vid string
and a few numbers per vid of the collection, one batch, one bucket, and a few rows per uid.
"""

from __future__ import annotations

import hashlib
import os
from array import array

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from include.plays.baseline import combine, row_hashes, schema
from include.plays.legacy_dump import Items, Refused
from video_analytics import legacy_stat as legacy
from video_analytics import totals as tot

FLUSH_ROWS = 1 << 17
BUCKET_ROWS = 1 << 21
VID_KINDS = ("vid", "vid_region", "vid_seg")


class _Spill:
    """Rows of one kind, appended in document order to a local Arrow file in batches."""

    def __init__(self, path: str, kind: str) -> None:
        self.path, self.schema = path, schema(kind)
        self.cols: list[list] = [[] for _ in self.schema]
        self.rows = self.buffered = 0
        self.writer = None

    def add(self, vid: str, rows: list[tuple]) -> None:
        """``rows`` without their vid (the first column)."""
        if not rows:
            return
        self.cols[0].extend([vid] * len(rows))
        for col, vals in zip(self.cols[1:], zip(*rows, strict=True), strict=True):
            col.extend(vals)
        self.rows += len(rows)
        self.buffered += len(rows)
        if self.buffered >= FLUSH_ROWS:
            self.flush()

    def write(self, batch: pa.RecordBatch) -> None:
        if self.writer is None:
            self.writer = pa.ipc.new_file(self.path, self.schema)
        self.writer.write_batch(batch)
        self.rows += batch.num_rows

    def flush(self) -> None:
        if self.buffered:
            arrays = [pa.array(c, type=f.type) for c, f in zip(self.cols, self.schema, strict=True)]
            self.rows -= self.buffered
            self.write(pa.record_batch(arrays, schema=self.schema))
            self.cols = [[] for _ in self.schema]
            self.buffered = 0

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def batches(self):
        """The rows again, one batch at a time (read, not memory-mapped)."""
        self.close()
        if not os.path.exists(self.path):
            return
        with pa.OSFile(self.path) as fh:
            reader = pa.ipc.open_file(fh)
            for i in range(reader.num_record_batches):
                yield reader.get_batch(i)

    def table(self) -> pa.Table:
        return pa.Table.from_batches(list(self.batches()), schema=self.schema)

    def remove(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if os.path.exists(self.path):
            os.remove(self.path)


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """The row numbers ``starts[i] .. starts[i] + lens[i] - 1`` of every entry, back to back."""
    total = int(lens.sum())
    offs = np.cumsum(lens) - lens
    return np.repeat(starts - offs, lens) + np.arange(total)


def _chunks_by_rows(lens: np.ndarray, limit: int):
    """``(lo, hi)`` ranges of entries whose rows add up to about ``limit`` (at least one entry each)."""
    cum = np.cumsum(lens)
    lo, n = 0, len(lens)
    while lo < n:
        before = int(cum[lo] - lens[lo])
        hi = max(lo + 1, int(np.searchsorted(cum, before + limit, "right")))
        yield lo, hi
        lo = hi


class Stage:
    """The baseline's state kinds, written sorted by key to ``<tmp>/<kind>.parquet``, with a fingerprint
    (``include.plays.baseline.fingerprint`` of the same rows)."""

    def __init__(self, tmp: str) -> None:
        self.tmp = tmp
        self.paths = {k: os.path.join(tmp, f"{k}.parquet") for k in tot.STATE_KINDS}
        self.writers = {k: pq.ParquetWriter(self.paths[k], schema(k)) for k in tot.STATE_KINDS}
        self.hashes = {k: hashlib.sha256() for k in tot.STATE_KINDS}
        self.rows = dict.fromkeys(tot.STATE_KINDS, 0)
        self.uids: dict[str, tuple] = {}  # uid -> (where, row, regions, Mtraffic)

    def _emit(self, kind: str, table: pa.Table) -> None:
        if table.num_rows:
            self.writers[kind].write_table(table)
            self.hashes[kind].update(row_hashes(table))
            self.rows[kind] += table.num_rows

    def _emit_rows(self, kind: str, rows: list[tuple]) -> None:
        s = schema(kind)
        cols = list(zip(*rows, strict=True)) if rows else [[] for _ in s]
        self._emit(kind, pa.table([pa.array(c, type=f.type) for c, f in zip(cols, s, strict=True)], schema=s))

    def add_stat(self, uid: str, items: Items) -> None:
        """One ``<uid>_stat`` collection (collections come in uid order, so vids stay sorted across them)."""
        spills = {k: _Spill(os.path.join(self.tmp, f"{k}.arrow"), k) for k in VID_KINDS}
        vids: list[str] = []
        wheres: list[str] = []
        lens = {"vid_region": array("q"), "vid_seg": array("q")}
        try:
            for where, doc in items:
                try:
                    kind, rows = legacy.stat_rows(uid, doc)
                except legacy.Malformed as exc:
                    raise Refused(f"{where}: {exc}") from None
                if kind == "uid":
                    if uid in self.uids:
                        raise Refused(f"{where}: field _id: the uid {uid!r} again (first at {self.uids[uid][0]})")
                    self.uids[uid] = (where, *rows)
                    continue
                row, regions, segs = rows
                vids.append(row[0])
                wheres.append(where)
                spills["vid"].add(row[0], [row[1:]])
                spills["vid_region"].add(row[0], regions)
                spills["vid_seg"].add(row[0], segs)
                lens["vid_region"].append(len(regions))
                lens["vid_seg"].append(len(segs))
            order = np.asarray(sorted(range(len(vids)), key=vids.__getitem__), dtype=np.int64)
            for a, b in zip(order[:-1].tolist(), order[1:].tolist(), strict=True):
                if vids[a] == vids[b]:
                    first, again = sorted((a, b))
                    raise Refused(f"{wheres[again]}: field _id: the vid {vids[a]!r} again (first at {wheres[first]})")
            del vids, wheres
            ones = np.ones(len(order), dtype=np.int64)
            for kind in VID_KINDS:
                n = ones if kind == "vid" else np.frombuffer(lens[kind], dtype=np.int64)
                self._write_sorted(kind, spills[kind], order, n)
        finally:
            for sp in spills.values():
                sp.remove()

    def _write_sorted(self, kind: str, spill: _Spill, order: np.ndarray, lens: np.ndarray) -> None:
        """The spill's rows (``lens[d]`` rows of document ``d``, in document order) written in ``order``."""
        starts = np.cumsum(lens) - lens
        if spill.rows <= BUCKET_ROWS:
            self._take(kind, spill.table(), starts[order], lens[order])
            return
        bucket_of_rank = (np.cumsum(lens[order]) - 1).clip(0) // BUCKET_ROWS
        bucket_of_doc = np.empty(len(order), dtype=np.int64)
        bucket_of_doc[order] = bucket_of_rank
        buckets = [_Spill(os.path.join(self.tmp, f"{kind}.{b}.arrow"), kind)
                   for b in range(int(bucket_of_rank[-1]) + 1)]
        try:
            row = 0
            for batch in spill.batches():
                doc = np.searchsorted(starts, np.arange(row, row + batch.num_rows), "right") - 1
                row += batch.num_rows
                rb = bucket_of_doc[doc]
                idx = np.argsort(rb, kind="stable")
                cuts = np.searchsorted(rb[idx], np.arange(len(buckets) + 1))
                for b in np.unique(rb).tolist():
                    buckets[b].write(batch.take(pa.array(idx[cuts[b]:cuts[b + 1]])))
            spill.remove()
            for b, bucket in enumerate(buckets):
                docs = np.flatnonzero(bucket_of_doc == b)  # document order, as in the bucket's file
                ranked = order[bucket_of_rank == b]  # vid order
                at = np.searchsorted(docs, ranked)
                n = lens[docs]
                self._take(kind, bucket.table(), (np.cumsum(n) - n)[at], n[at])
                bucket.remove()
        finally:
            for bucket in buckets:
                bucket.remove()

    def _take(self, kind: str, table: pa.Table, starts: np.ndarray, lens: np.ndarray) -> None:
        for lo, hi in _chunks_by_rows(lens, FLUSH_ROWS):
            rows = _ranges(starts[lo:hi], lens[lo:hi])
            if len(rows):
                self._emit(kind, table.take(pa.array(rows)))

    def close(self) -> dict[str, str]:
        """The uid kinds, then every file closed; returns ``{kind: path}``."""
        uids = sorted(self.uids)
        self._emit_rows("uid", [self.uids[u][1] for u in uids])
        self._emit_rows("uid_region", [(u, *r) for u in uids for r in self.uids[u][2]])
        self._emit_rows(tot.MONTH, [(u, self.uids[u][3]) for u in uids if self.uids[u][3] is not None])
        self.abort()
        return dict(self.paths)

    def abort(self) -> None:
        for w in self.writers.values():
            w.close()
        self.writers = {}

    def fingerprint(self) -> str:
        return combine(self.hashes)
