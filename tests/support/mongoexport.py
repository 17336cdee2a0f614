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


def _suffix(i: int) -> str:
    """The 3 characters after the uid: ``000``-``999``, then a letter and two base-62 digits."""
    if i < 1000:
        return f"{i:03d}"
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    i -= 1000
    return digits[10 + i // 3844] + digits[i // 62 % 62] + digits[i % 62]  # up to 1,000 + 52 * 62 * 62


def synthetic_dump(out_dir, vids: int, seed: int = 7, vids_per_uid: int = 1000, segments: int = 60,
                   last_day: str = "20140131") -> dict:
    """A legacy database's ``<uid>_stat`` and ``<uid>_vdaily`` collections as a mongoexport dump (relaxed
    Extended JSON), generated: ``vids`` vid documents (in random order within each uid's file, up to
    ``segments`` segments and 4 regions each) and one uid document per uid. Returns counts."""
    import json
    import random

    rng = random.Random(seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    regions = ["Beijing", "Guangdong", "Shanghai", "Sichuan", "Zhejiang", "0", "unknown"]
    n_uids = (vids + vids_per_uid - 1) // vids_per_uid
    lines = 0
    for u in range(n_uids):
        uid = f"{u:04d}"  # up to 10,000 uids
        ids = [f"{uid}{_suffix(i)}" for i in range(min(vids_per_uid, vids - u * vids_per_uid))]
        rng.shuffle(ids)
        with open(out / f"{uid}_stat.json", "w") as fh:
            fh.write(json.dumps({"_id": uid, "Traffic": 1e6 * rng.random(), "EngageSum": 10.0, "Load": 5000,
                                 "Play": 4000, "IP": 300, "Mtraffic": 1e3 * rng.random(),
                                 "Geo": {r: {"ClickNum": 3, "Traffic": 2.5, "EngageSum": 0.5, "Load": 0}
                                         for r in regions[:3]}}, separators=(",", ":")) + "\n")
            for vid in ids:
                n = rng.randint(0, segments)
                heat = {str(s): rng.randint(1, 50) for s in range(1, n + 1)}
                doc = {"_id": vid, "Traffic": 1e4 * rng.random(), "EngageSum": 50 * rng.random(),
                       "Load": rng.randint(0, 9000), "Play": rng.randint(0, 900), "IP": rng.randint(0, 500),
                       "Geo": {r: {"ClickNum": rng.randint(1, 90), "Traffic": 100 * rng.random(),
                                   "EngageSum": rng.random(), "Load": rng.randint(0, 99)}
                               for r in rng.sample(regions, rng.randint(1, 4))},
                       "HeatMapSum": heat, "PlayMapSum": {s: min(v, 7) for s, v in heat.items()},
                       "PlayID": rng.randint(1, 10**6), "Click": 0.5, "Engage": 0.5, "Htmap": "[]", "Ptmap": "[]"}
                fh.write(json.dumps(doc, separators=(",", ":")) + "\n")
                lines += 1
        with open(out / f"{uid}_vdaily.json", "w") as fh:
            for day in ("20140130", last_day):
                fh.write(json.dumps({"_id": day, ids[0] if ids else uid: {"Traffic": 1.0}}) + "\n")
    return {"vid_documents": lines, "uids": n_uids}
