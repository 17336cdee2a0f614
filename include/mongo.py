"""Publishing to MongoDB: bulk, unordered, acknowledged upserts (CONTRACT §4, §6)."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
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


PUBLISH_MARKER = "_video_publish"  # one document naming this MongoDB as a publish target


def target_token(db) -> str:
    """This database's publish token, kept in ``_video_publish`` (created on first use). Publish records
    are per token, so an empty or replaced MongoDB gets everything again."""
    c = db.get_collection(PUBLISH_MARKER, write_concern=_ack())
    doc = c.find_one({"_id": "target"})
    if doc is None:
        c.update_one({"_id": "target"}, {"$setOnInsert": {"token": uuid.uuid4().hex[:16]}}, upsert=True)
        doc = c.find_one({"_id": "target"})
    token = doc.get("token")
    if not (isinstance(token, str) and re.fullmatch(r"[0-9a-f]{16}", token)):
        # it names files on the data root: never a path, never anything but what we wrote
        raise ValueError(f"MongoDB {db.name}.{PUBLISH_MARKER} holds a malformed publish token {token!r}; "
                         "delete that document to publish everything again")
    return token


def doc_hash(doc: dict) -> int:
    """A 64-bit hash of a document's content (canonical JSON: sorted keys, exact floats)."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)


def _ack():
    from pymongo.write_concern import WriteConcern

    return WriteConcern(w=1)
