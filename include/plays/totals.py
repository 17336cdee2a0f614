"""The running totals on the data root (``totals/``): the stat documents' source, at a cost per day that
does not grow with history.

Layout::

    totals/registry.json                      {"days": {D: rollup_id}, "snapshots": {D: dir}, "head": D}
    totals/snapshots/<D>-<token>/<kind>.parquet   the state after folding every registered day <= D
    totals/published/<target>.parquet         coll, id, hash of each stat document last published
    totals/baseline/<name>/<kind>.parquet     the legacy job's totals, the state before the first day
                                              (``include.plays.baseline``; named in the registry)

A day's rollup folds its contribution into the state (``video_analytics.totals.fold``). The state is
kept on disk after the last day of each calendar month (checkpoints), after the latest day and after the
day before it. Folding the newest day reads the latest state; re-running the latest day starts from the
state before it; re-running (or first running) an earlier day starts from the checkpoint before it and
re-folds the later days, which invalidates and replaces every snapshot after it. Either way the result is
bit-identical to one in-order run.

Every function here that changes ``totals/`` runs under the totals lease
(``include.plays.lease.totals_lease``), held by its caller.
"""

from __future__ import annotations

import uuid

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.plays.baseline import baseline_day, baseline_rel, baseline_state
from include.plays.lease import ensure_held
from include.plays.store import ParquetStream, parquet_file, read_frame, write_frame
from include.storage import DataRoot
from video_analytics import totals as tot
from video_analytics.conventions import plays_path, totals_path
from video_analytics.play_decode import SEG_SCHEMA
from video_analytics.play_fast import sum_segment_tables

REGISTRY = totals_path("registry.json")
SEG = "vid_seg"  # folded vid range by vid range (seg_replay)
SEG_BAND_ROWS = 1 << 19  # rows of the vid_seg files per vid range (bounds what the fold adds to the rollup's peak)
SEG_FILE_SCHEMA = SEG_SCHEMA.set(0, pa.field("vid", pa.large_string()))  # vid_seg files, as write_frame makes them


def read_registry(root: DataRoot) -> dict:
    """``{"days": {day: rollup_id}, "snapshots": {day: dir}, "head": day | None}``."""
    if not root.exists(REGISTRY):
        return {"days": {}, "snapshots": {}, "head": None}
    return root.read_json(REGISTRY)


def day_contribution(root: DataRoot, day: str, kinds=tot.TABLES) -> dict[str, pd.DataFrame]:
    """The day's stored contribution to the totals (``plays/<day>/contrib/``), of ``kinds``."""
    return {k: read_frame(root, _contrib_rel(day, k)) for k in kinds}


def _contrib_rel(day: str, kind: str) -> str:
    return plays_path(day, "contrib", f"{kind}.parquet")


def _snapshot_rel(snapshot: str, kind: str) -> str:
    return totals_path("snapshots", snapshot, f"{kind}.parquet")


def load_state(root: DataRoot, snapshot: str, kinds=tot.STATE_KINDS) -> dict[str, pd.DataFrame]:
    """A snapshot's state (of ``kinds``)."""
    return {k: read_frame(root, _snapshot_rel(snapshot, k)) for k in kinds}


def _snapshot_name(through: str) -> str:
    return f"{through}-{uuid.uuid4().hex[:8]}"


def write_state(root: DataRoot, state: dict[str, pd.DataFrame], through: str, name: str | None = None) -> str:
    name = name or _snapshot_name(through)
    for k, df in state.items():
        write_frame(root, df, _snapshot_rel(name, k))
    return name


def base_for(reg: dict, day: str) -> str | None:
    """The latest kept state strictly before ``day`` (``None``: start from the baseline)."""
    before = [d for d in reg["snapshots"] if d < day]
    return max(before) if before else None


def replay(root: DataRoot, reg: dict, start: str | None, days: list[str], keep=frozenset()):
    """Fold ``days`` (sorted, all after ``start``) into the state kept at ``start`` (``None``: the baseline,
    ``include.plays.baseline``). Yields ``(day, state)`` after each day whose state is wanted (``keep``),
    and the last one. The states hold every kind but ``vid_seg`` (``SEG``: a realistic 5M day has 17.5M
    rows of it), which ``seg_replay`` folds vid range by vid range."""
    kinds = [k for k in tot.STATE_KINDS if k != SEG]
    state = load_state(root, reg["snapshots"][start], kinds) if start else baseline_state(root, reg, kinds)
    prev = start or baseline_day(reg)
    for i, d in enumerate(days):
        state = tot.fold(state, prev, day_contribution(root, d, [k for k in tot.TABLES if k != SEG]), d)
        prev = d
        if d in keep or i == len(days) - 1:
            yield d, state


def _seg_base(reg: dict, start: str | None) -> str | None:
    return _snapshot_rel(reg["snapshots"][start], SEG) if start else baseline_rel(reg, SEG)


def seg_bands(root: DataRoot, rels: list[str], rows: int | None = None) -> list[tuple]:
    """Vid ranges ``[lo, hi)`` (``None``: open) that cover the ``vid_seg`` files ``rels`` (sorted by vid), of
    about ``rows`` of their rows each, from their row groups' statistics (one range when a file has none)."""
    rows = rows or SEG_BAND_ROWS
    firsts = []
    for rel in rels:
        with root.fs.open(root.path(rel), "rb") as fh:
            md = parquet_file(fh).metadata
        col = md.schema.to_arrow_schema().get_field_index("vid")
        for i in range(md.num_row_groups):
            rg = md.row_group(i)
            st = rg.column(col).statistics
            if rg.num_rows and (st is None or not st.has_min_max):
                return [(None, None)]
            if rg.num_rows:
                firsts.append((st.min, rg.num_rows))
    firsts.sort()
    bounds: list[str] = []
    acc = 0
    for v, n in firsts:
        if acc >= rows and v > (bounds[-1] if bounds else firsts[0][0]):
            bounds.append(v)
            acc = 0
        acc += n
    edges = [None, *bounds, None]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _seg_band(root: DataRoot, rel: str | None, lo, hi) -> pa.Table:
    """The rows of a ``vid_seg`` file with ``lo <= vid < hi`` (``SEG_SCHEMA``)."""
    if rel is None:
        return SEG_SCHEMA.empty_table()
    where = [("vid", ">=", lo)] * (lo is not None) + [("vid", "<", hi)] * (hi is not None)
    t = root.read_table(rel, columns=SEG_SCHEMA.names, filters=where or None)
    vid = t.column("vid")
    if pa.types.is_dictionary(vid.type):
        vid = pa.chunked_array([c.dictionary_decode() for c in vid.chunks], vid.type.value_type)
    return pa.table([vid, *(t.column(c) for c in SEG_SCHEMA.names[1:])], names=SEG_SCHEMA.names).cast(SEG_SCHEMA)


def _packable(t: pa.Table) -> bool:
    """Whether ``sum_segment_tables`` can sum ``t``: no nulls, segments in [0, 2**32)."""
    if any(t.column(c).null_count for c in SEG_SCHEMA.names):
        return False
    seg = pc.min_max(t.column("seg")).as_py() if t.num_rows else {"min": 0, "max": 0}
    return 0 <= seg["min"] and seg["max"] < 2**32


def _seg_add(state: pa.Table, day: pa.Table) -> pa.Table:
    """``state + day`` of one vid range, per (vid, seg): by the ingest's ``sum_segment_tables`` (one stable sort of
    packed keys, which merges the two files' sorted runs in about linear time; a realistic 1M day onto a day of
    history: 0.35-0.4 s, pandas' ``groupby`` 1.3-2.0 s; onto an empty range, a day's sorted rows as they are), or
    by that ``groupby`` (``tot.add_kind``) for what it cannot pack."""
    if _packable(state) and _packable(day):
        return sum_segment_tables([state, day])
    return pa.Table.from_pandas(tot.add_kind(SEG, state.to_pandas(), day.to_pandas()), schema=SEG_SCHEMA,
                                preserve_index=False)


def seg_replay(root: DataRoot, reg: dict, start: str | None, days: list[str], keep=frozenset()):
    """``replay`` of ``vid_seg``, vid range by vid range (``seg_bands``): per range, ``(lo, hi, states)``,
    ``states`` the range's rows after each day of ``keep`` and the last one (``{day: Arrow table}``). The fold is
    per (vid, segment), so the ranges' results, in order, are the whole fold's."""
    base = _seg_base(reg, start)
    rels = [_contrib_rel(d, SEG) for d in days]
    for lo, hi in seg_bands(root, [r for r in (base, *rels) if r is not None]):
        state, out = _seg_band(root, base, lo, hi), {}
        for i, (d, rel) in enumerate(zip(days, rels, strict=True)):
            state = _seg_add(state, _seg_band(root, rel, lo, hi))
            if d in keep or i == len(days) - 1:
                out[d] = state
        yield lo, hi, out


def fold_segments(root: DataRoot, reg: dict, start: str | None, days: list[str], names: dict[str, str]) -> None:
    """The ``vid_seg`` of the new snapshots ``names`` (``{day: snapshot}``): ``days`` folded onto the state kept
    at ``start``, range by range (``seg_replay``), each range a row group."""
    streams = {d: ParquetStream(root, _snapshot_rel(n, SEG), SEG_FILE_SCHEMA) for d, n in names.items()}
    try:
        for *_, states in seg_replay(root, reg, start, days, set(names)):
            for d, out in streams.items():
                out.write(states[d].cast(SEG_FILE_SCHEMA))
            del states
    except BaseException:
        for out in streams.values():
            out.abort()
        raise
    for out in streams.values():
        out.close()


def fold_tables(root: DataRoot, reg: dict, start: str | None, days: list[str], names: dict[str, str]) -> None:
    """Every other kind of the new snapshots ``names``, as ``fold_segments``."""
    for d, state in replay(root, reg, start, days, set(names)):
        if d in names:
            write_state(root, state, d, names[d])


def fold_and_write(root: DataRoot, reg: dict, start: str | None, days: list[str], keep) -> dict[str, str]:
    """``days`` folded onto the state kept at ``start``; the states of the days in ``keep`` written as new
    snapshots (``vid_seg`` range by range, as row groups). Returns ``{day: snapshot}``."""
    names = {d: _snapshot_name(d) for d in days if d in keep}
    fold_segments(root, reg, start, days, names)
    fold_tables(root, reg, start, days, names)
    return names


def seg_differs(root: DataRoot, reg: dict, start: str | None, days: list[str], keep) -> set[str]:
    """The days of ``keep`` whose kept ``vid_seg`` differs from the one ``days`` folded onto ``start`` give."""
    bad: set[str] = set()
    for lo, hi, states in seg_replay(root, reg, start, days, keep):
        for d, got in states.items():
            if d in keep and d not in bad and not got.equals(_seg_band(root, _snapshot_rel(
                    reg["snapshots"][d], SEG), lo, hi)):
                bad.add(d)
    return bad


class DayFold:
    """Day D's (new) contribution folded into the kept states, in two steps that can run apart: ``segments``
    (``vid_seg``: it needs only that contribution, so it can run while the day's other contributions are
    made) and ``finish`` (the other kinds, then the registry). ``discard`` removes what a failed fold wrote.
    The caller holds the totals lease throughout."""

    def __init__(self, root: DataRoot, day: str, rollup_id: str) -> None:
        self.root, self.day = root, day
        self.reg = read_registry(root)
        self.days = {**self.reg["days"], day: rollup_id}
        ordered = sorted(self.days)
        self.keep = tot.kept_snapshots(ordered)
        self.start = base_for(self.reg, day)
        self.todo = [d for d in ordered if self.start is None or d > self.start]
        self.names = {d: _snapshot_name(d) for d in self.todo if d in self.keep}
        self.head = ordered[-1]
        self.registered = False

    def segments(self) -> None:
        fold_segments(self.root, self.reg, self.start, self.todo, self.names)

    def finish(self) -> dict:
        """The other kinds, then the registry; returns what was read and written."""
        root, reg = self.root, self.reg
        fold_tables(root, reg, self.start, self.todo, self.names)
        snapshots = {d: s for d, s in reg["snapshots"].items() if d < self.day and d in self.keep}
        snapshots.update(self.names)
        new = {**reg, "days": self.days, "snapshots": snapshots, "head": self.head}
        ensure_held()
        root.write_json(new, REGISTRY)
        self.registered = True
        live = set(snapshots.values())
        for p in root.glob(totals_path("snapshots", "*")):
            name = p.rstrip("/").split("/")[-1]
            if name not in live:
                root.remove(totals_path("snapshots", name))
        return {"start": self.start, "days_folded": self.todo, "snapshots_written": sorted(self.names),
                "head": self.head, "days_registered": len(self.days)}

    def discard(self) -> None:
        """Removes the new snapshots, unless the registry names them already."""
        if self.registered:
            return
        for name in self.names.values():
            self.root.remove(totals_path("snapshots", name))


def head_state(root: DataRoot) -> tuple[dict[str, pd.DataFrame], dict]:
    """The state after every registered day (the baseline's before the first), and the registry."""
    reg = read_registry(root)
    head = reg["head"]
    return (load_state(root, reg["snapshots"][head]) if head else baseline_state(root, reg)), reg


def stat_documents(state: dict[str, pd.DataFrame], vids=None, uids=None) -> list[dict]:
    """``<uid>_stat`` documents of ``state`` (of ``vids`` / ``uids`` only, ``None`` = all), each
    ``{coll, _id, kind, doc}``."""
    out = [{"coll": f"{uid}_stat", "_id": vid, "kind": "vid", "doc": doc}
           for uid, vid, doc in tot.vid_stat_docs(state, vids)]
    out += [{"coll": f"{uid}_stat", "_id": uid, "kind": "uid", "doc": doc} for uid, doc in tot.uid_stat_docs(state, uids)]
    return out
