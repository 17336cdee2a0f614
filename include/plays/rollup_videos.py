"""Task ``plays.rollup_videos``: the day's contributions and documents, from what ``ingest_plays`` stored.

Daily documents (``<uid>_vdaily``, ``<uid>_daily``, ``<uid>_type``, ``_id`` = D) come from the day alone;
``<uid>_stat`` documents from the running totals the day's contribution is folded into
(``include.plays.totals``), so re-runs and out-of-order days give the same totals.
"""

from __future__ import annotations

import time
import uuid

import pyarrow as pa

from include.plays.lease import totals_lease
from include.plays.store import CONTRIB_KINDS, read_frame, write_frame
from include.plays.totals import fold_day
from include.storage import DataRoot
from video_analytics import plays as core
from video_analytics.conventions import plays_path


def rollup_day(root: DataRoot, day: str) -> dict:
    """The day's own part of the rollup: its contributions (``contrib/<kind>.parquet``) and its play /
    vdaily / daily / type documents, from what ``ingest_plays`` stored. Needs no other day."""
    plays = read_frame(root, plays_path(day, "plays.parquet"))
    segs = read_frame(root, plays_path(day, "segments.parquet"))
    tab = read_frame(root, plays_path(day, "snapshot", "tables.parquet"))
    tables, bad_tables = core.parse_tables(zip(tab["table"].tolist(), tab["field"].tolist(),
                                               tab["value"].tolist(), strict=True))
    c = core.contributions(plays, segs, tables["load"], tables["play"], tables["region"])
    for k in CONTRIB_KINDS:
        write_frame(root, c[k], plays_path(day, "contrib", f"{k}.parquet"))

    play_docs = core.play_doc_frame(plays, day)
    write_frame(root, play_docs, plays_path(day, "docs", "play.parquet"),
                schema={"coll": pa.string(), "Date": pa.string(), "zz_uinfo": pa.string()})

    vd = [{"coll": f"{u}_vdaily", "_id": day, "doc": d} for u, d in core.vdaily_docs(c).items()]
    dl = [{"coll": f"{u}_daily", "_id": day, "doc": d} for u, d in core.daily_docs(c).items()]
    ty = [{"coll": f"{u}_type", "_id": day, "doc": d} for u, d in core.type_docs(c).items()]
    root.write_jsonl(vd, plays_path(day, "docs", "vdaily.jsonl"))
    root.write_jsonl(dl, plays_path(day, "docs", "daily.jsonl"))
    root.write_jsonl(ty, plays_path(day, "docs", "type.jsonl"))
    return {"vids": int(len(c["vid"])), "uids": int(len(c["uid"])), "kids": int(len(c["kid"])),
            "plays": int(len(plays)), "day_documents": len(play_docs) + len(vd) + len(dl) + len(ty),
            "bad_table_entries": bad_tables}


def rollup_videos(root: DataRoot, day: str, redis=None) -> dict:
    """The day's own part (``rollup_day``), then its contribution folded into the running totals
    (``include.plays.totals``) under the totals lease when ``redis`` is given (always, outside tests):
    the ``<uid>_stat`` documents come from those totals, so a day's cost does not grow with history.

    ``docs/stat_keys.json`` names the stat documents the day refreshes: its vids, and its uids, or every
    uid when D is the latest day (``Mtraffic`` is the month-to-date traffic of the latest day's month, so a
    new month resets it everywhere). ``rollup.json`` is written last: until then the day is not done.
    """
    t0 = time.perf_counter()
    root.remove(plays_path(day, "rollup.json"))
    report = {"day": day, **rollup_day(root, day)}
    t_day = time.perf_counter()
    rollup_id = uuid.uuid4().hex
    with totals_lease(redis, f"rollup_videos {day}"):
        folded = fold_day(root, day, rollup_id)
    cv = read_frame(root, plays_path(day, "contrib", "vid.parquet"), columns=["vid", "uid"])
    latest = folded["head"] == day
    keys = {"vids": cv["vid"].tolist(), "uids": None if latest else sorted(set(cv["uid"].tolist()))}
    root.write_json(keys, plays_path(day, "docs", "stat_keys.json"))
    report.update({"rollup_id": rollup_id, "totals": folded,
                   "seconds": {"day": round(t_day - t0, 3), "totals": round(time.perf_counter() - t_day, 3),
                               "total": round(time.perf_counter() - t0, 3)}})
    root.write_json(report, plays_path(day, "rollup.json"))
    return report
