"""Task ``online_time.merge_report``: the shards' results into the window's dataset and report."""

from __future__ import annotations

import uuid
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.mongo import bulk_upsert
from include.online_time.compute_shard import RESULT_SCHEMA
from include.online_time.logs import column, numpy_of
from include.storage import DataRoot
from video_analytics import conventions as conv

COLLECTION = "online_time"


def doc_id(userid: int, end: date, window_days: int) -> str:
    """``<userid>_<YYYYMMDD>`` for the 7-day report (as ever), ``<userid>_<YYYYMMDD>_w<W>`` for another window."""
    base = f"{userid}_{conv.ymd(end)}"
    return base if window_days == conv.WINDOW_DAYS else f"{base}_w{window_days}"


def publish(mongo_db, table: pa.Table, end: date, window_days: int) -> int:
    """One document per (user, window end, window), ``_id`` by ``doc_id``; users of an earlier run of the
    same window that are gone now are removed. Another window's documents are never touched."""
    end_s = end.isoformat()
    run = uuid.uuid4().hex
    uid = table.column("userid").to_pylist()
    sec = table.column("online_seconds").to_pylist()
    ses = table.column("sessions").to_pylist()
    docs = ((doc_id(u, end, window_days), {"userid": u, "window_end": end_s, "window_days": window_days,
                                       "online_seconds": s, "sessions": c, "run": run})
            for u, s, c in zip(uid, sec, ses, strict=True))
    res = bulk_upsert(mongo_db, COLLECTION, docs)
    mongo_db[COLLECTION].delete_many({"window_end": end_s, "window_days": window_days, "run": {"$ne": run}})
    return res["upserted"] + res["matched"]


def merge_report(root: DataRoot, end: date, shard_results: list[dict], mongo_db=None) -> dict:
    """Concatenate shard results into ``online_time.parquet``, publish, write ``totals.json``."""
    partition = root.read_json(conv.online_time_path(end, "partition.json"))
    parts = [root.read_table(r["path"]) for r in shard_results if root.exists(r["path"])]
    table = pa.concat_tables(parts) if parts else RESULT_SCHEMA.empty_table()
    order = np.argsort(numpy_of(table.column("userid")), kind="stable").astype(np.int64, copy=False)
    table = table.take(column(order, pa.int64()))
    result_path = conv.online_time_path(end, "online_time.parquet")
    root.write_table(table, result_path)
    window_days = int(partition.get("window_days", conv.WINDOW_DAYS))
    published = publish(mongo_db, table, end, window_days) if mongo_db is not None else None
    totals = {
        "end": end.isoformat(),
        "users": table.num_rows,
        "online_seconds": int(pc.sum(table.column("online_seconds")).as_py() or 0),
        "sessions": int(pc.sum(table.column("sessions")).as_py() or 0),
        "rows_in": partition["rows_in"],
        "rows_parsed": partition["rows_parsed"],
        "rejects": partition["rejects"],
        "shards": len(partition["shards"]),
        "shards_with_results": len(parts),
        # each shard's result has exactly its users with an in-window event (verify recounts them)
        "distinct_users_in_window": sum(int(r["users"]) for r in shard_results),
        "result_path": result_path,
        "published": published,
        "missing_days": partition.get("missing_days", []),
    }
    root.write_json(totals, conv.online_time_path(end, "totals.json"))
    return totals
