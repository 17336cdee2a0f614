"""Task ``plays.publish``: the day's documents into MongoDB (owned fields only, ``$set``, upsert), sending
only documents whose content changed since they were last published to that MongoDB.

Publish records, per target (``include.mongo.target_token``), hold a 64-bit content hash per document:
``plays/<D>/published/<target>.parquet`` for the day's own documents, ``totals/published/<target>.parquet``
for the stat documents (all days; updated under the totals lease, so two days publishing at once send
the latest totals last). The hashes are computed without building documents: play documents from their
stored rows (``pandas.util.hash_pandas_object``), stat documents from the running-totals rows they are
made of (``video_analytics.totals.key_hashes``); only the documents that changed are then built.

No document over MongoDB's 16 MiB limit is sent: every document of a publish is measured (BSON) before the
first is sent, and one too large fails the publish, naming it, with nothing sent (``DocumentTooLarge``).
"""

from __future__ import annotations

import json
from itertools import groupby

import bson
import pandas as pd

from include.mongo import bulk_upsert, doc_hash, target_token
from include.plays.documents import Doc, daily_documents, play_documents, play_frame, stat_keys
from include.plays.lease import totals_lease
from include.plays.store import write_frame
from include.plays.totals import head_state, stat_documents
from include.storage import DataRoot
from video_analytics import totals as tot
from video_analytics.conventions import plays_path, totals_path

Key = tuple[str, str]
MAX_BSON_BYTES = 16 * 1024 * 1024  # MongoDB's document limit (CONTRACT §2)


class DocumentTooLarge(ValueError):
    """A document over ``MAX_BSON_BYTES``; the message names its collection and ``_id``."""


def check_sizes(docs: list[Doc], limit: int = MAX_BSON_BYTES) -> None:
    """Raise ``DocumentTooLarge`` for the first document (with its ``_id``) over ``limit`` bytes of BSON."""
    for coll, _id, doc in docs:
        n = len(bson.encode({"_id": _id, **doc}))
        if n > limit:
            raise DocumentTooLarge(f"document {coll} _id={_id!r} is {n:,} bytes of BSON, over MongoDB's limit "
                                   f"of {limit:,}: nothing was published")


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


def _changed_play_documents(root: DataRoot, day: str, published: dict[Key, int]):
    df = play_frame(root, day)
    hashes = pd.util.hash_pandas_object(df, index=False).to_numpy().view("int64").tolist()
    keys = list(zip(df["coll"].tolist(), [json.dumps(int(i)) for i in df["_id"].tolist()], strict=True))
    record = dict(zip(keys, hashes, strict=True))
    rows = [i for i, (k, h) in enumerate(zip(keys, hashes, strict=True)) if published.get(k) != h]
    return list(play_documents(df.iloc[rows])), record


def _changed_stat_documents(root: DataRoot, day: str, state, published: dict[Key, int]):
    vids, uids = stat_keys(root, day)
    record: dict[Key, int] = {}
    changed_ids: dict[str, list[str]] = {"vid": [], "uid": []}
    for (kind, _id), h in tot.key_hashes(state, vids, uids).items():
        k = (f"{_id[:4]}_stat", json.dumps(_id))
        record[k] = h
        if published.get(k) != h:
            changed_ids[kind].append(_id)
    docs = [(r["coll"], r["_id"], r["doc"]) for r in stat_documents(state, changed_ids["vid"], changed_ids["uid"])]
    return docs, record


def publish(root: DataRoot, day: str, mongo_db, redis=None, force: bool = False) -> dict:
    """Bulk, unordered, acknowledged upserts of day D's documents that changed since their last publish
    to ``mongo_db`` (all of them with ``force``). A record is written only after its documents were
    acknowledged, so a failed publish sends them again next time. Every document is measured before any
    is sent: ``DocumentTooLarge`` (naming it) when one is over MongoDB's 16 MiB."""
    token = target_token(mongo_db)
    own_rel = plays_path(day, "published", f"{token}.parquet")
    before = {} if force else _read_record(root, own_rel)
    send, record = _changed_play_documents(root, day, before)
    d_send, d_record = changed(daily_documents(root, day), before)
    record.update(d_record)
    check_sizes(send)
    check_sizes(d_send)
    with totals_lease(redis, f"publish {day}"):  # stat documents first: all is measured before any is sent
        state, _ = head_state(root)
        stat_rel = totals_path("published", f"{token}.parquet")
        published = _read_record(root, stat_rel)
        s_send, s_record = _changed_stat_documents(root, day, state, {} if force else published)
        check_sizes(s_send)
        stat = _send(mongo_db, s_send)
        published.update(s_record)
        _write_record(root, published, stat_rel)
    own = _send(mongo_db, send + d_send)
    _write_record(root, record, own_rel)
    n = len(record) + len(s_record)
    sent = len(send) + len(d_send) + len(s_send)
    return {"day": day, "target": token, "documents": n, "upserts": own["upserts"] + stat["upserts"],
            "unchanged": n - sent, "bulk_calls": own["bulk_calls"] + stat["bulk_calls"],
            "collections": own["collections"] + stat["collections"]}
