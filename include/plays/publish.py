"""Task ``plays.publish``: the day's documents into MongoDB (owned fields only, ``$set``, upsert), sending
only documents whose content changed since they were last published to that MongoDB.

Publish records, per target (``include.mongo.target_token``), hold a 64-bit content hash per document:
``plays/<D>/published/<target>.parquet`` for the day's own documents, ``totals/published/<target>.parquet``
for the stat documents (all days; updated under the totals lease, so two days publishing at once send
the latest totals last).
"""

from __future__ import annotations

import json
from itertools import groupby

import pandas as pd

from include.mongo import bulk_upsert, doc_hash, target_token
from include.plays.documents import Doc, day_stat_documents, own_documents
from include.plays.lease import totals_lease
from include.plays.store import write_frame
from include.plays.totals import head_state
from include.storage import DataRoot
from video_analytics.conventions import plays_path, totals_path

Key = tuple[str, str]


def _read_record(root: DataRoot, rel: str) -> dict[Key, int]:
    if not root.exists(rel):
        return {}
    t = root.read_table(rel)
    return dict(zip(zip(t.column("coll").to_pylist(), t.column("id").to_pylist(), strict=True),
                    t.column("hash").to_pylist(), strict=True))


def _write_record(root: DataRoot, record: dict[Key, int], rel: str) -> None:
    keys = list(record)
    write_frame(root, pd.DataFrame({"coll": [k[0] for k in keys], "id": [k[1] for k in keys],
                                    "hash": pd.Series(list(record.values()), dtype="int64")}), rel)


def changed(docs, published: dict[Key, int]) -> tuple[list[Doc], dict[Key, int]]:
    """The documents whose hash differs from ``published`` (or that are new), and every document's hash."""
    send: list[Doc] = []
    record: dict[Key, int] = {}
    for coll, _id, doc in docs:
        k = (coll, json.dumps(_id))
        h = doc_hash(doc)
        record[k] = h
        if published.get(k) != h:
            send.append((coll, _id, doc))
    return send, record


def _send(mongo_db, docs: list[Doc]) -> dict[str, int]:
    out = {"bulk_calls": 0, "upserts": 0, "collections": 0}
    docs = sorted(docs, key=lambda d: d[0])
    for coll, group in groupby(docs, key=lambda d: d[0]):
        res = bulk_upsert(mongo_db, coll, ((_id, doc) for _, _id, doc in group))
        out["bulk_calls"] += res["calls"]
        out["upserts"] += res["ops"]
        out["collections"] += 1
    return out


def publish(root: DataRoot, day: str, mongo_db, redis=None, force: bool = False) -> dict:
    """Bulk, unordered, acknowledged upserts of day D's documents that changed since their last publish
    to ``mongo_db`` (all of them with ``force``). A record is written only after its documents were
    acknowledged, so a failed publish sends them again next time."""
    token = target_token(mongo_db)
    own_rel = plays_path(day, "published", f"{token}.parquet")
    send, record = changed(own_documents(root, day), {} if force else _read_record(root, own_rel))
    own = _send(mongo_db, send)
    _write_record(root, record, own_rel)
    with totals_lease(redis, f"publish {day}"):
        state, _ = head_state(root)
        stat_rel = totals_path("published", f"{token}.parquet")
        published = _read_record(root, stat_rel)
        s_send, s_record = changed(day_stat_documents(root, day, state), {} if force else published)
        stat = _send(mongo_db, s_send)
        published.update(s_record)
        _write_record(root, published, stat_rel)
    return {"day": day, "target": token, "documents": len(record) + len(s_record),
            "upserts": own["upserts"] + stat["upserts"], "unchanged": len(record) + len(s_record) - len(send)
            - len(s_send), "bulk_calls": own["bulk_calls"] + stat["bulk_calls"],
            "collections": own["collections"] + stat["collections"]}
