"""Every document a day publishes, built in one place for ``publish``, ``verify`` and ``export-docs``."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from include.plays.store import decode_mixed, read_frame, stored_columns
from include.plays.totals import head_state, stat_documents
from include.storage import DataRoot
from video_analytics import plays as core
from video_analytics.conventions import plays_path

Doc = tuple[str, Any, dict]  # (collection, _id, fields)


def play_frame(root: DataRoot, day: str):
    """The day's ``<vid>_play`` documents (one row each, ``core.play_doc_frame``), made of the ingest's
    ``plays.parquet`` as it is read, sorted by collection then ``_id``."""
    rel = plays_path(day, "plays.parquet")
    columns = ["vid", "playid", *core.play_doc_sources(stored_columns(root, rel)).values()]
    df = core.play_doc_frame(read_frame(root, rel, columns=columns), day)
    return df.sort_values(["coll", "_id"], kind="stable").reset_index(drop=True)


def play_documents(df) -> Iterator[Doc]:
    """Documents of ``play_frame`` rows."""
    df = decode_mixed(df.copy())
    fields = [f for f in core.PLAY_DOC_FIELDS if f in df.columns]
    cols = [df[f].tolist() for f in fields]
    zi = fields.index("zz_uinfo") if "zz_uinfo" in fields else -1
    for coll, _id, *vals in zip(df["coll"].tolist(), df["_id"].tolist(), *cols, strict=True):
        doc = dict(zip(fields, vals, strict=True))
        if zi >= 0 and not isinstance(vals[zi], str):  # absent K_z1 (None / NaN after Parquet)
            del doc["zz_uinfo"]
        yield coll, int(_id), doc


def _play_documents(root: DataRoot, day: str) -> Iterator[Doc]:
    """The day's ``<vid>_play`` documents, sorted by collection then ``_id``."""
    yield from play_documents(play_frame(root, day))


def _daily_documents(root: DataRoot, day: str) -> Iterator[Doc]:
    """The day's ``<uid>_vdaily``, ``<uid>_daily`` and ``<uid>_type`` documents (``_id`` = D)."""
    for kind in ("vdaily", "daily", "type"):
        for r in root.read_jsonl(plays_path(day, "docs", f"{kind}.jsonl")):
            yield r["coll"], r["_id"], r["doc"]


def stat_keys(root: DataRoot, day: str) -> tuple[list[str], list[str] | None]:
    """The vids and uids (``None``: every uid) whose stat documents day D refreshes."""
    keys = root.read_json(plays_path(day, "docs", "stat_keys.json"))
    return keys["vids"], keys["uids"]


def day_stat_documents(root: DataRoot, day: str, state=None) -> Iterator[Doc]:
    """The stat documents day D refreshes, from the running totals now (``state``: the head state
    already read)."""
    if state is None:
        state, _ = head_state(root)
    for r in stat_documents(state, *stat_keys(root, day)):
        yield r["coll"], r["_id"], r["doc"]


def daily_documents(root: DataRoot, day: str) -> Iterator[Doc]:
    """Day D's vdaily / daily / type documents."""
    yield from _daily_documents(root, day)


def own_documents(root: DataRoot, day: str) -> Iterator[Doc]:
    """Day D's own documents: play documents, then vdaily / daily / type."""
    yield from _play_documents(root, day)
    yield from _daily_documents(root, day)


def day_documents(root: DataRoot, day: str) -> Iterator[Doc]:
    """What publishing day D sends: its own documents and the stat documents it refreshes, grouped by
    collection (stat documents from the running totals as they are now)."""
    yield from _play_documents(root, day)
    by_coll: dict[str, list[Doc]] = defaultdict(list)
    for d in _daily_documents(root, day):
        by_coll[d[0]].append(d)
    for d in day_stat_documents(root, day):
        by_coll[d[0]].append(d)
    for coll in sorted(by_coll):
        yield from by_coll[coll]


def all_documents(root: DataRoot) -> dict[str, dict[Any, dict]]:
    """Every document that would be published, ``{collection: {_id: doc}}`` (stat docs at their latest)."""
    out: dict[str, dict[Any, dict]] = defaultdict(dict)
    state, reg = head_state(root)
    for day in sorted(reg["days"]):  # the days folded into the totals: a rollup's commit point
        for coll, _id, doc in own_documents(root, day):
            out[coll][_id] = doc
    for r in stat_documents(state):
        out[r["coll"]][r["_id"]] = r["doc"]
    return out


def export_docs(root: DataRoot, out_dir: str) -> dict:
    """Write ``<collection>.jsonl`` per collection under ``out_dir`` (documents with ``_id`` first)."""
    import fsspec

    fs, base = fsspec.core.url_to_fs(out_dir)
    docs = all_documents(root)
    bad = [c for c in docs if not valid_collection_name(c)]
    if bad:
        raise ValueError(f"refusing to export collection name(s) that are not valid file names: {sorted(bad)[:5]!r}")
    fs.makedirs(base, exist_ok=True)
    n = 0
    for coll in sorted(docs):
        items = sorted(docs[coll].items(), key=lambda kv: (str(type(kv[0])), kv[0]))
        with fs.open(f"{base.rstrip('/')}/{coll}.jsonl", "w") as fh:
            for _id, doc in items:
                fh.write(json.dumps({"_id": _id, **doc}) + "\n")
        n += len(items)
    return {"out": out_dir, "collections": len(docs), "documents": n}


def valid_collection_name(name: str) -> bool:
    """A MongoDB collection name that is also one file name under ``--out``."""
    return (bool(name) and not name.startswith((".", "system.")) and "$" not in name
            and not any(c in name for c in "/\\\x00"))


def as_map(docs: Iterator[Doc]) -> dict[str, dict[Any, dict]]:
    """``{collection: {_id: doc}}`` of an iterator of documents."""
    out: dict[str, dict[Any, dict]] = defaultdict(dict)
    for coll, _id, doc in docs:
        out[coll][_id] = doc
    return out


__all__ = ["day_documents", "own_documents", "day_stat_documents", "all_documents", "export_docs", "stat_keys",
           "as_map"]
