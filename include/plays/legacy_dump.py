"""The legacy job's MongoDB read for the cutover (CONTRACT §7), from a ``mongoexport`` dump (one
``<collection>.json`` per collection, a document per line, canonical or relaxed Extended JSON) or from the
live database, one document at a time (staged by ``include.plays.legacy_stage``)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator

_FAST_ID = re.compile(rb'^\s*\{\s*"_id"\s*:\s*"([^"\\]*)"')
Items = Iterator[tuple[str, object]]  # (where, document or _id)


class Refused(ValueError):
    """The import is refused, whole; the message names the file and line (or collection and _id)."""


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


# ---- sources: (uid, "vdaily" | "stat", items), the vdaily collections first, then stat by uid ----------

def dump_collections(dump_dir: str):
    """The ``<uid>_vdaily.json`` and ``<uid>_stat.json`` files of a ``mongoexport`` dump (others are not
    the totals' and are skipped)."""
    if not os.path.isdir(dump_dir):
        raise Refused(f"--dump {dump_dir}: not a directory")
    names = os.listdir(dump_dir)
    for kind, reader in (("vdaily", _dump_ids), ("stat", _dump_docs)):
        for uid, n in _by_uid(names, f"_{kind}.json"):
            yield uid, kind, reader(os.path.join(dump_dir, n))


def _by_uid(names, suffix: str) -> list[tuple[str, str]]:
    """``(uid, name)`` of the names ``<uid><suffix>``, in uid order (so vids come out sorted)."""
    return sorted((n[: -len(suffix)], n) for n in names if n.endswith(suffix) and len(n) > len(suffix))


def _parse(where: str, line: bytes) -> dict:
    """One line of Extended JSON (plain JSON when it names no ``$`` key: decoded without the hook)."""
    from bson import json_util

    try:
        doc = json.loads(line) if b'"$' not in line else json_util.loads(line)
    except Exception as exc:
        raise Refused(f"{where}: not a JSON document ({type(exc).__name__}: {_first_line(exc)})") from None
    if not isinstance(doc, dict):
        raise Refused(f"{where}: not a JSON document; mongoexport writes one per line (without --jsonArray)")
    return doc


def _dump_docs(path: str) -> Items:
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                where = f"{path}:{n}"
                yield where, _parse(where, line)


def _dump_ids(path: str) -> Items:
    """The ``_id`` of each line (mongoexport writes it first: read without decoding the whole line)."""
    with open(path, "rb") as fh:
        for n, line in enumerate(fh, 1):
            m = _FAST_ID.match(line)
            if m:
                yield f"{path}:{n}", m.group(1).decode("utf-8", "replace")
            elif line.strip():
                where = f"{path}:{n}"
                yield where, _parse(where, line).get("_id")


def mongo_collections(db, batch: int = 1000):
    """The ``<uid>_vdaily`` and ``<uid>_stat`` collections of the live database."""
    names = db.list_collection_names()
    for kind in ("vdaily", "stat"):
        for uid, name in _by_uid(names, f"_{kind}"):
            label = f"video_mongo {db.name}.{name}"
            if kind == "vdaily":
                items = ((f"{label} _id {d['_id']!r}", d["_id"]) for d in db[name].find({}, {"_id": 1}))
            else:
                items = ((f"{label} _id {d.get('_id')!r}", d) for d in db[name].find({}, batch_size=batch))
            yield uid, kind, items
