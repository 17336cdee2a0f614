"""A database written out the way ``mongoexport`` writes it, and read back into a database."""

from __future__ import annotations

from pathlib import Path


def export(db, out_dir, canonical: bool = False, skip=()) -> Path:
    """One ``<collection>.json`` per collection: a document per line, ``_id`` first, compact, in relaxed
    (mongoexport's default) or canonical Extended JSON."""
    from bson import json_util

    from include.mongo import PUBLISH_MARKER

    opts = json_util.CANONICAL_JSON_OPTIONS if canonical else json_util.RELAXED_JSON_OPTIONS
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in sorted(db.list_collection_names()):
        if name == PUBLISH_MARKER or name in skip:
            continue
        with open(out / f"{name}.json", "w") as fh:
            for d in db[name].find():
                doc = {"_id": d["_id"], **{k: v for k, v in d.items() if k != "_id"}}
                fh.write(json_util.dumps(doc, json_options=opts, separators=(",", ":")) + "\n")
    return out


def restore(dump_dir, db) -> None:
    """Every ``<collection>.json`` of a dump inserted into ``db``."""
    from bson import json_util

    for path in sorted(Path(dump_dir).glob("*.json")):
        docs = [json_util.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if docs:
            db[path.stem].insert_many(docs)
