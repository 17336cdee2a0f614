"""The legacy job's MongoDB read for the cutover (CONTRACT §7), from a ``mongoexport`` dump (one
``<collection>.json`` per collection, a document per line, canonical or relaxed Extended JSON) or from the
live database, and staged as the baseline's Parquet files (sorted by key, the snapshots' format) in a
local folder.

Memory is bounded whatever the dump's size: documents are read one at a time; a collection's region and
segment rows are spilled to local Arrow files in batches of ``FLUSH_ROWS`` and written out in key order
by ``take`` over the memory-mapped spill, ``FLUSH_ROWS`` rows at a time. What stays in memory is one
entry per vid of the collection being read (a ``<uid>_stat`` holds at most one uid's vids) and a few rows
per uid.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from include.plays.baseline import combine, row_hashes, schema
from video_analytics import legacy_stat as legacy
from video_analytics import totals as tot

FLUSH_ROWS = 1 << 19
_FAST_ID = re.compile(rb'^\s*\{\s*"_id"\s*:\s*"([^"\\]*)"')
Items = Iterator[tuple[str, object]]  # (where, document or _id)


class Refused(ValueError):
    """The import is refused, whole; the message names the file and line (or collection and _id)."""


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


# ---- sources: (uid, "vdaily" | "stat", items), the vdaily collections first, then stat by uid ----------

def dump_collections(dump_dir: str):
    """The ``<uid>_vdaily.json`` and ``<uid>_stat.json`` files of a ``mongoexport`` dump (others are not
    the totals' and are skipped)."""
    if not os.path.isdir(dump_dir):
        raise Refused(f"--dump {dump_dir}: not a directory")
    names = sorted(os.listdir(dump_dir))
    for kind, reader in (("vdaily", _dump_ids), ("stat", _dump_docs)):
        suffix = f"_{kind}.json"
        for n in names:
            if n.endswith(suffix) and len(n) > len(suffix):
                yield n[: -len(suffix)], kind, reader(os.path.join(dump_dir, n))


def _parse(where: str, line: bytes) -> dict:
    """One line of Extended JSON (plain JSON when it names no ``$`` key: decoded without the hook)."""
    from bson import json_util

    try:
        doc = json.loads(line) if b'"$' not in line else json_util.loads(line)
    except Exception as exc:
        raise Refused(f"{where}: not a JSON document ({type(exc).__name__}: {_first_line(exc)})") from None
    if not isinstance(doc, dict):
        raise Refused(f"{where}: not a JSON document; mongoexport writes one per line (without --jsonArray)")
    return doc


def _dump_docs(path: str) -> Items:
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                where = f"{path}:{n}"
                yield where, _parse(where, line)


def _dump_ids(path: str) -> Items:
    """The ``_id`` of each line (mongoexport writes it first: read without decoding the whole line)."""
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            m = _FAST_ID.match(line)
            if m:
                yield f"{path}:{n}", m.group(1).decode("utf-8", "replace")
            elif line.strip():
                where = f"{path}:{n}"
                yield where, _parse(where, line).get("_id")


def mongo_collections(db, batch: int = 1000):
    """The ``<uid>_vdaily`` and ``<uid>_stat`` collections of the live database."""
    names = sorted(db.list_collection_names())
    for kind in ("vdaily", "stat"):
        suffix = f"_{kind}"
        for name in names:
            if name.endswith(suffix) and len(name) > len(suffix):
                label = f"video_mongo {db.name}.{name}"
                if kind == "vdaily":
                    items = ((f"{label} _id {d['_id']!r}", d["_id"]) for d in db[name].find({}, {"_id": 1}))
                else:
                    items = ((f"{label} _id {d.get('_id')!r}", d) for d in db[name].find({}, batch_size=batch))
                yield name[: -len(suffix)], kind, items


# ---- staging -----------------------------------------------------------------------------------------

class _Spill:
    """Rows of one kind, appended in document order to a local Arrow file in batches."""

    def __init__(self, path: str, kind: str) -> None:
        self.path, self.schema = path, schema(kind)
        self.cols: list[list] = [[] for _ in self.schema]
        self.rows = self.buffered = 0
        self.writer = None

    def add(self, vid: str, rows: list[tuple]) -> None:
        if not rows:
            return
        self.cols[0].extend([vid] * len(rows))
        for col, vals in zip(self.cols[1:], zip(*rows, strict=True), strict=True):
            col.extend(vals)
        self.rows += len(rows)
        self.buffered += len(rows)
        if self.buffered >= FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self.buffered:
            return
        if self.writer is None:
            self.writer = pa.ipc.new_file(self.path, self.schema)
        arrays = [pa.array(c, type=f.type) for c, f in zip(self.cols, self.schema, strict=True)]
        self.writer.write_batch(pa.record_batch(arrays, schema=self.schema))
        self.cols = [[] for _ in self.schema]
        self.buffered = 0

    def table(self) -> pa.Table:
        """Every row, memory-mapped (not read into memory)."""
        self._flush()
        if self.writer is None:
            return self.schema.empty_table()
        self.writer.close()
        self.writer = None
        return pa.ipc.open_file(pa.memory_map(self.path)).read_all()

    def remove(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if os.path.exists(self.path):
            os.remove(self.path)


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
        spills = {k: _Spill(os.path.join(self.tmp, f"{k}.arrow"), k) for k in ("vid_region", "vid_seg")}
        index: list[tuple] = []  # (vid, where, row, region start, count, segment start, count)
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
                r, s = spills["vid_region"], spills["vid_seg"]
                index.append((row[0], where, row, r.rows, len(regions), s.rows, len(segs)))
                r.add(row[0], regions)
                s.add(row[0], segs)
            self._write_vids(index, spills)
        finally:
            for sp in spills.values():
                sp.remove()

    def _write_vids(self, index: list[tuple], spills: dict[str, _Spill]) -> None:
        index.sort(key=lambda x: x[0])
        for a, b in zip(index, index[1:], strict=False):
            if a[0] == b[0]:
                raise Refused(f"{b[1]}: field _id: the vid {b[0]!r} again (first at {a[1]})")
        for lo in range(0, len(index), FLUSH_ROWS):
            self._emit_rows("vid", [x[2] for x in index[lo: lo + FLUSH_ROWS]])
        for kind, at in (("vid_region", 3), ("vid_seg", 5)):
            table = spills[kind].table()
            starts = np.fromiter((x[at] for x in index), dtype=np.int64, count=len(index))
            lens = np.fromiter((x[at + 1] for x in index), dtype=np.int64, count=len(index))
            for lo, hi in _chunks_by_rows(lens, FLUSH_ROWS):
                ln = lens[lo:hi]
                total = int(ln.sum())
                if total:
                    offs = np.cumsum(ln) - ln
                    rows = np.repeat(starts[lo:hi] - offs, ln) + np.arange(total)
                    self._emit(kind, table.take(pa.array(rows)))
            del table

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
