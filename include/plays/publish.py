"""Task ``plays.publish``: the day's documents into MongoDB (owned fields only, ``$set``, upsert)."""

from __future__ import annotations

from itertools import groupby

from include.mongo import bulk_upsert
from include.plays.documents import day_documents
from include.storage import DataRoot


def publish(root: DataRoot, day: str, mongo_db) -> dict:
    """Bulk, unordered, acknowledged upserts of ``documents.day_documents``, one batch series per
    collection."""
    calls = upserts = colls = 0
    for coll, docs in groupby(day_documents(root, day), key=lambda d: d[0]):
        res = bulk_upsert(mongo_db, coll, ((_id, doc) for _, _id, doc in docs))
        calls += res["calls"]
        upserts += res["ops"]
        colls += 1
    return {"day": day, "collections": colls, "upserts": upserts, "bulk_calls": calls}
