"""The plays section of task ``verify``: the day's documents against its inputs (data root, MongoDB);
and ``verify_history``, the full check of every stored day (``video-analytics verify --all``).

A day's check costs what the day costs: the running totals are checked from the kept state before the
day to the kept state at or after it (the previous day's state, for the latest day), not from the
first day. ``verify_history`` re-derives everything from the first day and catches what a daily check
cannot see, such as an old day's stored contribution edited after the fact.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.plays.baseline import fingerprint
from include.plays.documents import all_documents, day_documents
from include.plays.lease import totals_lease
from include.plays.store import parquet_file, read_frame, stored_days, stored_rows
from include.plays.totals import SEG, base_for, load_state, read_registry, replay, seg_differs
from include.procs import SMALL_DAY_PLAYS, SMALL_HEAP, TIGHT_HEAP, lean_memory, trim_heap
from include.storage import DataRoot
from video_analytics import checks
from video_analytics import plays as core
from video_analytics import totals as tot
from video_analytics.conventions import MAX_QUARANTINE_RATE, plays_path
from video_analytics.play_fast import key_hashes


def _running_totals(root: DataRoot, day: str, redis=None) -> dict:
    """The day's contribution is the one folded into the totals, and re-folding it (with the days up to
    the next kept state) onto the kept state before it gives that kept state again, bit for bit."""
    rollup_id = root.read_json(plays_path(day, "rollup.json")).get("rollup_id")
    with totals_lease(redis, f"verify {day}"):
        reg = read_registry(root)
        registered = reg["days"].get(day)
        if registered != rollup_id:
            return checks.check("running_totals_moved_by_day", False,
                                {"rollup_id": rollup_id, "registered": registered,
                                 "why": "the day's current rollup is not the one folded into the totals"})
        start = base_for(reg, day)
        end = min(d for d in reg["snapshots"] if d >= day)
        days = [d for d in sorted(reg["days"]) if (start is None or d > start) and d <= end]
        *_, (_, state) = replay(root, reg, start, days)
        kinds = [k for k in tot.STATE_KINDS if k != SEG]
        bad = tot.equal_states(state, load_state(root, reg["snapshots"][end], kinds), kinds)
        del state
        if seg_differs(root, reg, start, days, {end}):
            bad = [k for k in tot.STATE_KINDS if k in bad or k == SEG]
    return checks.check("running_totals_moved_by_day", not bad,
                        {"from": start, "to": end, "days_folded": days, "differing": bad})


def _codes(col: pa.ChunkedArray) -> np.ndarray:
    """Per value a code, equal exactly when the values are equal: by sorting, not hashing (a hash table of a 5M
    day's keys took ~0.7 GiB more; bench/README)."""
    n = len(col)
    order = pc.sort_indices(col)
    s = col.take(order)
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = ~pc.fill_null(pc.equal(s.slice(1), s.slice(0, n - 1)), False).to_numpy(zero_copy_only=False)
    del s
    codes = np.empty(n, dtype=np.int64)
    codes[order.to_numpy()] = np.cumsum(new) - 1
    return codes


def _distinct_codes(col: pa.ChunkedArray) -> np.ndarray:
    """``_codes`` of a column whose values are (nearly) all distinct, such as the day's keys, for less: each value's
    64-bit hash when no two hashes are equal (the values are then all distinct too: equal values hash equal),
    else ``_codes``. A 1M-play day's keys: ~0.1 s, against ~1 s for the sort of the strings (bench/README)."""
    hashes = np.concatenate([np.zeros(0, dtype=np.uint64)] + [key_hashes(c) for c in col.chunks])
    s = np.sort(hashes)
    if not (s[1:] == s[:-1]).any():
        return hashes
    del s
    return _codes(col)


def _dictionary_codes(root: DataRoot, rel: str, name: str) -> np.ndarray:
    """``_codes`` of a column with few distinct values (``vid``), from the file's dictionary pages: the row groups'
    dictionaries unified, the indices are the codes; ``_codes`` when a value is null."""
    with root.fs.open(root.path(rel), "rb") as fh:
        col = parquet_file(fh, read_dictionary=[name]).read(columns=[name]).column(name)
    if not pa.types.is_dictionary(col.type):
        return _codes(col)
    if col.null_count:
        return _codes(col.cast(col.type.value_type))
    col = col.unify_dictionaries()
    return np.concatenate([np.zeros(0, dtype=np.int64)] +
                          [c.indices.to_numpy(zero_copy_only=False).astype(np.int64) for c in col.chunks])


def _coded_plays(root: DataRoot, day: str) -> pd.DataFrame:
    """``plays.parquet``'s ``key, vid, playid, flow`` for ``checks.plays_day_checks``, ``key`` and ``vid`` as
    codes (``_distinct_codes``, ``_dictionary_codes``): the checks compare them only for equality."""
    rel = plays_path(day, "plays.parquet")
    cols = {"key": _distinct_codes(root.read_table(rel, columns=["key"]).column("key"))}
    trim_heap()
    cols["vid"] = _dictionary_codes(root, rel, "vid")
    t = root.read_table(rel, columns=["playid", "flow"])
    cols.update({c: t.column(c).to_numpy() for c in ("playid", "flow")})
    return pd.DataFrame(cols, copy=False)


def _published(expected: dict[str, dict], mongo_db, name: str = "published_documents_match") -> dict:
    """Published documents equal the data root's (owned fields, floats 1e-9 relative)."""
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
    return checks.check(name, not bad, {"documents": n, "mismatches": bad[:5]})


def _day_checks(root: DataRoot, day: str, rep: dict, cv: pd.DataFrame, max_quarantine_rate: float) -> list[dict]:
    """``checks.plays_day_checks`` of the day, from the data root."""
    return checks.plays_day_checks(
        unique=stored_rows(root, plays_path(day, "snapshot", "plays_raw.parquet")),
        plays=_coded_plays(root, day),
        quarantine=read_frame(root, plays_path(day, "quarantine.parquet"), columns=["key", "reason"]),
        duplicates=rep.get("duplicates", 0), contrib_vid=cv,
        vdaily=root.read_jsonl(plays_path(day, "docs", "vdaily.jsonl")),
        max_quarantine_rate=max_quarantine_rate, quarantine_uri=root.uri(plays_path(day, "quarantine.parquet")))


OVERLAP_MAX_PLAYS = SMALL_DAY_PLAYS  # a bigger day's totals re-fold and day checks (~400 and ~570 MiB at 5M) one by one


def verify_plays(root: DataRoot, day: str, mongo_db=None,
                 max_quarantine_rate: float = MAX_QUARANTINE_RATE, redis=None) -> list[dict]:
    """Checks recomputed from the data root (and MongoDB when given); each ``{"name", "ok", "detail"}``."""
    rep = root.read_json(plays_path(day, "ingest.json"))
    alongside = int(rep.get("unique") or 0) <= OVERLAP_MAX_PLAYS  # past it the two peaks add up (~950 MiB at 5M)
    # past it too, every large block is handed back at once (the working heap would add ~90 MiB at 5M); below it,
    # blocks up to 16 MiB are reused: a 1M day's verify faulted 0.28M pages in, 0.17M so (bench/README)
    lean_memory(SMALL_HEAP if alongside else TIGHT_HEAP)
    cv = read_frame(root, plays_path(day, "contrib", "vid.parquet"))
    with ThreadPoolExecutor(1, thread_name_prefix="verify-totals") as pool:  # mostly Arrow's reads and sorts
        totals = pool.submit(contextvars.copy_context().run, _running_totals, root, day, redis) if alongside else None
        out = _day_checks(root, day, rep, cv, max_quarantine_rate)
        out.insert(4, totals.result() if totals is not None else _running_totals(root, day, redis))
    kept = rep.get("tables_from_snapshot") or {}
    out.append(checks.check("day_tables_from_snapshot", True,
                            {"entries": sum(t["entries"] for t in kept.values()), "tables": kept,
                             "why": "entries Redis no longer has, taken from the day's stored snapshot"}))
    if mongo_db is not None:
        expected: dict = {}
        for coll, _id, doc in day_documents(root, day):
            expected.setdefault(coll, {})[_id] = doc
        out.append(_published(expected, mongo_db))
    return out


def _baseline_intact(root: DataRoot, reg: dict) -> dict:
    """The baseline's files still hold the rows imported (``include.plays.baseline``)."""
    b = reg.get("baseline") or {}
    if not b.get("dir"):
        return checks.check("baseline_intact", True, {"baseline": "none" if not b else "new site"})
    got = fingerprint(root, b["dir"])
    return checks.check("baseline_intact", got == b.get("fingerprint"),
                        {"dir": b["dir"], "last_day": b.get("last_day"), "fingerprint": got,
                         "imported": b.get("fingerprint")})


def verify_history(root: DataRoot, mongo_db=None, redis=None) -> list[dict]:
    """The full check, from the first stored day: every done day is folded with its current rollup;
    every day's stored contribution agrees with its plays; re-folding every day from the start (the legacy
    baseline, whose files are checked too, or nothing) gives every kept state bit for bit; and, with
    ``mongo_db``, every document is published as the data root has it."""
    done = {d: root.read_json(plays_path(d, "rollup.json")).get("rollup_id")
            for d in stored_days(root, "rollup.json")}
    out = []
    with totals_lease(redis, "verify --all"):
        reg = read_registry(root)
        stale = sorted(d for d in done if reg["days"].get(d) != done[d])
        extra = sorted(set(reg["days"]) - set(done))
        out.append(checks.check("every_done_day_folded", not stale,
                                {"days": len(done), "not_folded_as_rolled_up": stale[:10],
                                 "folded_but_not_done": extra[:10]}))
        bad_contrib = []
        for d in sorted(reg["days"]):
            plays = read_frame(root, plays_path(d, "plays.parquet"), columns=["vid", "flow", "comprate", "playid"])
            if not checks.contribution_matches_plays(read_frame(root, plays_path(d, "contrib", "vid.parquet")), plays):
                bad_contrib.append(d)
        out.append(checks.check("contributions_match_plays", not bad_contrib,
                                {"days": len(reg["days"]), "mismatched_days": bad_contrib[:10]}))
        out.append(_baseline_intact(root, reg))
        ordered = sorted(reg["days"])
        kinds = [k for k in tot.STATE_KINDS if k != SEG]
        diffs = {d: tot.equal_states(state, load_state(root, reg["snapshots"][d], kinds), kinds)
                 for d, state in replay(root, reg, None, ordered, keep=frozenset(reg["snapshots"]))
                 if d in reg["snapshots"]}
        for d in seg_differs(root, reg, None, ordered, set(reg["snapshots"])) if ordered else ():
            diffs[d] = [k for k in tot.STATE_KINDS if k in diffs.get(d, ()) or k == SEG]
        bad_states = [f"{d}: {', '.join(diff)}" for d, diff in diffs.items() if diff]
        out.append(checks.check("totals_refold_from_first_day", not bad_states,
                                {"days": len(ordered), "kept_states": sorted(reg["snapshots"]),
                                 "differing": bad_states[:10]}))
    if mongo_db is not None:
        out.append(_published(all_documents(root), mongo_db, "all_documents_published"))
    return out
