"""Task ``plays.rollup_videos``: the day's contributions and documents, from what ``ingest_plays`` stored.

Daily documents (``<uid>_vdaily``, ``<uid>_daily``, ``<uid>_type``, ``_id`` = D) come from the day alone;
``<uid>_stat`` documents from the running totals the day's contribution is folded into
(``include.plays.totals``), so re-runs and out-of-order days give the same totals.
"""

from __future__ import annotations

import contextvars
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.plays.lease import ensure_held, totals_lease
from include.plays.store import (
    CONTRIB_KINDS,
    parquet_file,
    read_frame,
    write_frame,
)
from include.plays.totals import DayFold
from include.procs import SMALL_DAY_PLAYS, lean_memory, trim_heap
from include.storage import DataRoot
from video_analytics import plays as core
from video_analytics.conventions import plays_path
from video_analytics.play_decode import SEG_SCHEMA

STRS = ("vid", "kid", "region")  # few distinct values: read as dictionary codes


def _trim_past(plays: int) -> None:
    """``trim_heap`` on a day of more than ``SMALL_DAY_PLAYS`` plays (a lower peak); a smaller day keeps its free
    memory for the next step (fewer page faults: a 1M day's 124k became 52k, 0.1-0.3 s; bench/README)."""
    if plays > SMALL_DAY_PLAYS:
        trim_heap()


def _plays_columns(root: DataRoot, rel: str, rows: int = 1 << 18):
    """The columns the contributions need, read ``rows`` at a time into preallocated arrays: per ``STRS``
    column (int32 codes, distinct values in order of first appearance), the ips as Arrow strings, and
    ``flow``, ``comprate``, ``playid`` as NumPy arrays. About 40 bytes a play, nothing of the whole file."""
    with root.fs.open(root.path(rel), "rb") as fh:
        pf = parquet_file(fh, read_dictionary=list(STRS))
        n = pf.metadata.num_rows
        codes = {c: np.empty(n, dtype=np.int32) for c in STRS}
        index: dict[str, dict[str, int]] = {c: {} for c in STRS}
        num = {"flow": np.empty(n, dtype=np.float64), "comprate": np.empty(n, dtype=np.float64),
               "playid": np.empty(n, dtype=np.int64)}
        ips: list[pa.Array] = []
        at = 0
        for b in pf.iter_batches(batch_size=rows, columns=[*STRS, "ipkey", *num]):
            k = b.num_rows
            for c in STRS:
                col = b.column(c)
                if not isinstance(col, pa.DictionaryArray):
                    col = pc.dictionary_encode(col)
                seen = index[c]
                local = np.fromiter((seen.setdefault(v, len(seen)) for v in col.dictionary.to_pylist()),
                                    dtype=np.int32, count=len(col.dictionary))
                codes[c][at: at + k] = local[col.indices.to_numpy(zero_copy_only=False)]
            for c, arr in num.items():
                arr[at: at + k] = b.column(c).to_numpy(zero_copy_only=False)
            ips.append(b.column("ipkey"))
            at += k
            _trim_past(n)
    coded = {c: (codes[c][:at], list(index[c])) for c in STRS}
    return coded, pa.chunked_array(ips, type=pa.string()), {c: a[:at] for c, a in num.items()}


def _copy_segments(root: DataRoot, day: str) -> None:
    """The day's ``vid_seg`` contribution: ``segments.parquet`` copied byte for byte (its row groups are vid
    ranges; 17.5M rows on a realistic 5M day, never read)."""
    root.copy_file(plays_path(day, "segments.parquet"), plays_path(day, "contrib", "vid_seg.parquet"))


def _contributions(root: DataRoot, day: str, rel: str) -> tuple[dict, int, int]:
    """The day's contributions (``core.coded_contributions``, ``vid_seg`` aside), its play count and its bad
    day-table entries."""
    coded, ipkey, num = _plays_columns(root, rel)
    n_plays = len(num["flow"])
    _trim_past(n_plays)
    tab = read_frame(root, plays_path(day, "snapshot", "tables.parquet"))
    tables, bad_tables = core.parse_tables(zip(tab["table"].tolist(), tab["field"].tolist(),
                                               tab["value"].tolist(), strict=True))
    with ThreadPoolExecutor(1, thread_name_prefix="rollup-ips") as pool:  # Arrow's hashing frees the GIL
        ipn = pool.submit(core.distinct_counts, coded["vid"][0], len(coded["vid"][1]), ipkey)
        del ipkey
        if n_plays > SMALL_DAY_PLAYS:  # counted before the sums, the ips freed (a lower peak); else alongside
            ipn.result()
            _trim_past(n_plays)
        args = (*coded.pop("vid"), *coded.pop("kid"), *coded.pop("region"), None, num.pop("flow"),
                num.pop("comprate"), num.pop("playid").astype(np.int64, copy=False))
        c = core.coded_contributions(*args, SEG_SCHEMA.empty_table().to_pandas(), tables["load"], tables["play"],
                                     tables["region"], ip_counts=ipn.result)
        del args
    _trim_past(n_plays)
    return c, n_plays, bad_tables


def rollup_day(root: DataRoot, day: str, copy_segments: bool = True) -> dict:
    """The day's own part of the rollup: its contributions (``contrib/<kind>.parquet``; ``vid_seg`` is
    ``_copy_segments``, left to the caller when not ``copy_segments``) and its vdaily / daily / type documents,
    from what ``ingest_plays`` stored. Needs no other day. Its ``<vid>_play`` documents are the ingest's
    ``plays.parquet`` itself, read as documents when they are published (``documents.play_frame``).

    Bounded memory: the plays' columns are read as dictionary codes (about 40 bytes a play; the ips, nearly
    one a play, as plain strings). Free memory is handed back between the steps on a large day only
    (``_trim_past``)."""
    lean_memory()
    root.remove(plays_path(day, "docs", "play.parquet"))  # where earlier versions wrote the play documents
    if copy_segments:
        _copy_segments(root, day)
    c, n_plays, bad_tables = _contributions(root, day, plays_path(day, "plays.parquet"))
    for k in CONTRIB_KINDS:
        if k != "vid_seg":
            write_frame(root, c[k], plays_path(day, "contrib", f"{k}.parquet"))
    n_docs = n_plays
    _trim_past(n_plays)
    for name, docs in (("vdaily", core.vdaily_docs), ("daily", core.daily_docs), ("type", core.type_docs)):
        rows = [{"coll": f"{u}_{name}", "_id": day, "doc": d} for u, d in docs(c).items()]
        root.write_jsonl(rows, plays_path(day, "docs", f"{name}.jsonl"))
        n_docs += len(rows)
        del rows  # one kind's documents at a time (a 5M day's vdaily ones: ~0.4 GiB as Python objects)
        _trim_past(n_plays)
    return {"vids": int(len(c["vid"])), "uids": int(len(c["uid"])), "kids": int(len(c["kid"])),
            "plays": int(n_plays), "day_documents": n_docs, "bad_table_entries": bad_tables}


def rollup_videos(root: DataRoot, day: str, redis=None) -> dict:
    """The day's own part (``rollup_day``), and its contribution folded into the running totals
    (``include.plays.totals``) under the totals lease when ``redis`` is given (always, outside tests):
    the ``<uid>_stat`` documents come from those totals, so a day's cost does not grow with history. The
    ``vid_seg`` fold (``DayFold.segments``) needs only the ingest's segments, so it runs in a thread while
    ``rollup_day`` makes the other contributions; the lease is held from the start.

    ``docs/stat_keys.json`` names the stat documents the day refreshes: its vids, and its uids, or every
    uid when D is the latest day (``Mtraffic`` is the month-to-date traffic of the latest day's month, so a
    new month resets it everywhere). ``rollup.json`` is written last: until then the day is not done.
    """
    t0 = time.perf_counter()
    root.remove(plays_path(day, "rollup.json"))
    rollup_id = uuid.uuid4().hex
    with totals_lease(redis, f"rollup_videos {day}"):
        _copy_segments(root, day)
        fold = DayFold(root, day, rollup_id)
        try:
            with ThreadPoolExecutor(1, thread_name_prefix="rollup-fold") as pool:  # waited for on the way out
                segments = pool.submit(contextvars.copy_context().run, fold.segments)
                report = {"day": day, **rollup_day(root, day, copy_segments=False)}
                segments.result()
            t_day = time.perf_counter()
            folded = fold.finish()
        except BaseException:
            fold.discard()
            raise
    cv = read_frame(root, plays_path(day, "contrib", "vid.parquet"), columns=["vid", "uid"])
    latest = folded["head"] == day
    keys = {"vids": cv["vid"].tolist(), "uids": None if latest else sorted(set(cv["uid"].tolist()))}
    root.write_json(keys, plays_path(day, "docs", "stat_keys.json"))
    report.update({"rollup_id": rollup_id, "totals": folded,
                   "seconds": {"day": round(t_day - t0, 3), "totals": round(time.perf_counter() - t_day, 3),
                               "total": round(time.perf_counter() - t0, 3)}})
    ensure_held()
    root.write_json(report, plays_path(day, "rollup.json"))
    return report
