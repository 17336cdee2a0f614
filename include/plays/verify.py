"""The plays section of task ``verify``: the day's documents against its inputs (data root, MongoDB)."""

from __future__ import annotations

from include.plays.documents import day_documents, stat_ids
from include.plays.rollup_videos import stat_documents, totals
from include.plays.store import read_contrib, read_frame
from include.storage import DataRoot
from video_analytics import checks
from video_analytics import plays as core
from video_analytics.conventions import MAX_QUARANTINE_RATE, plays_path


def _running_totals(root: DataRoot, day: str, contrib_vid) -> dict:
    """Stored stat documents == rebuilt from the stored days; (Σ all) - (Σ without D) == D's contribution."""
    rollup = root.read_json(plays_path(day, "rollup.json"))
    days = [d for d in rollup["days_included"] if root.exists(plays_path(d, "contrib", "vid.parquet"))]
    per_day = read_contrib(root, days)
    with_d = totals(per_day, days)["vid"].set_index("vid")
    without = totals(per_day, [d for d in days if d != day])["vid"].set_index("vid")
    moved = checks.totals_moved_by(with_d, without, contrib_vid.set_index("vid"))
    key = lambda r: (r["coll"], r["_id"], r["kind"])  # noqa: E731
    stored = {key(r): r["doc"] for r in root.read_jsonl(plays_path(day, "docs", "stat.jsonl"))}
    fresh = {key(r): r["doc"] for r in stat_documents(root, *stat_ids(root, day), days)}
    bad = checks.documents_match(stored, fresh, core.close, core.diff)
    return checks.check("running_totals_moved_by_day", moved and not bad and set(stored) == set(fresh),
                        {"days": days, "vids": int(len(contrib_vid)), "mismatches": bad})


def _published(root: DataRoot, day: str, mongo_db) -> dict:
    """Published documents of the day equal the data root's (owned fields, floats 1e-9 relative)."""
    expected: dict = {}
    for coll, _id, doc in day_documents(root, day):
        expected.setdefault(coll, {})[_id] = doc
    bad: list[str] = []
    n = 0
    for coll, docs in expected.items():
        n += len(docs)
        got = {}
        for d in mongo_db[coll].find({"_id": {"$in": list(docs)}}):
            got[d["_id"]] = {k: d.get(k) for k in docs.get(d["_id"], {})}
        bad += [f"{coll}/{m}" for m in checks.documents_match(docs, got, core.close, core.diff, 5 - len(bad))]
        if len(bad) >= 5:
            break
    return checks.check("published_documents_match", not bad, {"documents": n, "mismatches": bad[:5]})


def verify_plays(root: DataRoot, day: str, mongo_db=None,
                 max_quarantine_rate: float = MAX_QUARANTINE_RATE) -> list[dict]:
    """Checks recomputed from the data root (and MongoDB when given); each ``{"name", "ok", "detail"}``."""
    rep = root.read_json(plays_path(day, "ingest.json"))
    cv = read_frame(root, plays_path(day, "contrib", "vid.parquet"))
    out = checks.plays_day_checks(
        unique=root.read_table(plays_path(day, "snapshot", "plays_raw.parquet"), columns=["key"]).num_rows,
        plays=read_frame(root, plays_path(day, "plays.parquet"), columns=["key", "vid", "playid", "flow"]),
        quarantine=read_frame(root, plays_path(day, "quarantine.parquet"), columns=["key", "reason"]),
        duplicates=rep.get("duplicates", 0), contrib_vid=cv,
        vdaily=root.read_jsonl(plays_path(day, "docs", "vdaily.jsonl")),
        max_quarantine_rate=max_quarantine_rate, quarantine_uri=root.uri(plays_path(day, "quarantine.parquet")))
    out.insert(4, _running_totals(root, day, cv))
    if mongo_db is not None:
        out.append(_published(root, day, mongo_db))
    return out
