"""``ingest_plays``, pass 2: per spilled chunk, kid and play id filled in; ``plays.parquet`` and
``allocation.parquet`` row groups; the plays of vids without a usable kid quarantined with their raw values."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.plays.decoders import read_ipc
from include.plays.ingest_run import IngestRun
from include.plays.play_ids import release_reservation
from include.plays.store import ParquetStream, iter_batches, per_play_options
from include.procs import trim_heap
from video_analytics import plays as core

TRIM_EVERY = 8  # chunks between hand-backs of free memory (a 1M day: every chunk faulted its pages in again, ~0.25 s
# more; never, ~40 MiB more at the peak; a 5M day: every chunk, 1.1 s more than every 8th, ~100 MiB lower, and still
# below the rollup's peak; bench/README, sixteenth round)
ALLOC_SCHEMA = pa.schema([("key", pa.string()), ("vid", pa.string()), ("playid", pa.int64())])
# (nearly) one value per play: plain, no statistics (a realistic day's heat maps are ~80 % distinct)
_UNIQUE_COLS = {"pos", "key", "ipkey", "PIP", "PIP__json", "PlayTime", "PlayTime__json", "flow", "comprate",
                "zz_uinfo", "playid", "Htmap"}


def _json_column(col: pa.Array) -> pa.Array:
    return pa.array([json.dumps(v) for v in col.to_pylist()], type=pa.string())


def plays_schema(mixed: set[str]) -> pa.Schema:
    """``plays.parquet``: one row per ingested play."""
    fields = [("pos", pa.int64()), ("key", pa.string()), ("vid", pa.string()), ("region", pa.string()),
              ("flow", pa.float64()), ("comprate", pa.float64()), ("ipkey", pa.string()), ("uid", pa.string())]
    fields += [(c + "__json" if c in mixed else c, pa.string()) for c in core.TEXT_DOC_FIELDS.values()]
    fields += [("Htmap", pa.string()), ("zz_uinfo", pa.string()), ("kid", pa.string()), ("playid", pa.int64())]
    return pa.schema(fields)


class _Numbering:
    """Play ids and kids for the spilled chunks, in order: per vid with new plays, the last id before the
    day's reservation and the new plays of earlier chunks (ranks go on across chunks, as in pass 1)."""

    def __init__(self, run: IngestRun) -> None:
        self.run = run
        self.new_vids = pa.array(list(run.new_count), pa.string())
        self.before = np.fromiter((run.before.get(v, 0) for v in run.new_count), dtype=np.int64,
                                  count=len(run.new_count))
        self.seen = np.zeros(len(run.new_count), dtype=np.int64)
        self.kid_vids = pa.array(list(run.kids), pa.string())
        self.kid_vals = pa.array(list(run.kids.values()), pa.string())
        self.bad_vids = pa.array(sorted(run.bad_kid), pa.string())
        self.bad_pos: list[np.ndarray] = []

    def chunk(self, tab: pa.Table, alloc_w: ParquetStream | None) -> pa.Table:
        """A spilled chunk as ``plays.parquet`` rows (its new ids appended to ``alloc_w``)."""
        run = self.run
        pid = tab.column("_pid").to_numpy()
        new = pid < 0
        slot = pc.index_in(tab.column("vid"), value_set=self.new_vids).to_numpy(zero_copy_only=False)
        offsets = self.seen.copy()
        if new.any():
            self.seen += np.bincount(slot[new].astype(np.int64), minlength=len(self.seen))
        if run.bad_kid:
            drop = pc.is_in(tab.column("vid"), value_set=self.bad_vids).to_numpy(zero_copy_only=False)
            if drop.any():
                self.bad_pos.append(tab.column("pos").to_numpy()[drop])
                tab = tab.filter(pa.array(~drop))
                pid, new, slot = pid[~drop], new[~drop], slot[~drop]
        if not tab.num_rows:
            return tab
        if new.any():
            pid = pid.copy()
            sl = slot[new].astype(np.int64)
            pid[new] = self.before[sl] + offsets[sl] - pid[new]
            run.new_ids += int(new.sum())
            keep = pa.array(new)
            alloc_w.write(pa.table({"key": tab.column("key").filter(keep), "vid": tab.column("vid").filter(keep),
                                    "playid": pa.array(pid[new])}))
        for c in run.mixed:
            if c in tab.column_names:
                tab = tab.append_column(c + "__json", _json_column(tab.column(c))).drop_columns([c])
        kid = pc.take(self.kid_vals, pc.index_in(tab.column("vid"), value_set=self.kid_vids))
        tab = tab.append_column("kid", kid)
        return tab.append_column("playid", pa.array(pid)).drop_columns(["_pid"])


def pass2(run: IngestRun, quar: ParquetStream) -> None:
    """``plays.parquet`` and ``allocation.parquet`` (the earlier ids first, as they were); the reservation is
    released once the allocation is published."""
    root = run.root
    alloc_rel = run.rel("allocation.parquet")
    schema = plays_schema(run.mixed)
    num = _Numbering(run)
    alloc_w = ParquetStream(root, alloc_rel, ALLOC_SCHEMA, dictionary=["vid"]) if run.counts else None
    try:
        if alloc_w is not None and root.exists(alloc_rel):
            for b in iter_batches(root, alloc_rel, 1 << 18):
                alloc_w.write(pa.Table.from_batches([b]))
        with ParquetStream(root, run.rel("plays.parquet"), schema, **per_play_options(schema.names, _UNIQUE_COLS)) as out:
            for i, path in enumerate(run.spills):
                if i % TRIM_EVERY == 0:
                    trim_heap()
                tab = num.chunk(read_ipc(path), alloc_w)
                if tab.num_rows:
                    out.write(tab)
                    run.ingested += tab.num_rows
        if alloc_w is not None:
            alloc_w.close()
            release_reservation(run.redis, run.day)
    except BaseException:
        if alloc_w is not None:
            alloc_w.abort()
        raise
    if num.bad_pos:  # whole vids whose category is not a usable name: quarantined with their raw values
        pos = np.concatenate(num.bad_pos)
        extra = root.read_table(run.snap_rel).take(pa.array(pos))
        quar.write(pa.table({"key": extra.column("key"), "reason": pa.array(["bad_kid"] * len(pos)),
                             "S": extra.column("S"), "J": extra.column("J"), "z1": extra.column("z1")}))
        run.n_quarantined += len(pos)
        run.add_reasons({"bad_kid": len(pos)})
