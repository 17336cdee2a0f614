"""Publishing to MongoDB: bulk, unordered, acknowledged upserts (CONTRACT §4, §6)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

BULK_BATCH = 10_000


def bulk_upsert(db, coll: str, docs: Iterable[tuple[Any, dict]], batch: int = BULK_BATCH) -> dict[str, int]:
    """``$set`` each ``(_id, fields)`` into ``coll`` (upsert), ``batch`` operations per ``bulk_write``.

    Acknowledged (``w=1``) and unordered. Returns ``{"calls", "upserted", "matched", "ops"}``.
    """
    from pymongo import UpdateOne
    from pymongo.write_concern import WriteConcern

    c = db.get_collection(coll, write_concern=WriteConcern(w=1))
    out = {"calls": 0, "upserted": 0, "matched": 0, "ops": 0}
    ops: list = []

    def flush() -> None:
        if ops:
            res = c.bulk_write(ops, ordered=False)
            out["calls"] += 1
            out["upserted"] += res.upserted_count
            out["matched"] += res.matched_count
            out["ops"] += len(ops)
            ops.clear()

    for _id, fields in docs:
        ops.append(UpdateOne({"_id": _id}, {"$set": fields}, upsert=True))
        if len(ops) >= batch:
            flush()
    flush()
    return out
