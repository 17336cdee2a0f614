"""Verification arithmetic (the ``verify`` task): checks as plain dicts from counts and frames.

Pure: the adapters read the data root and pass what they found.
"""

from __future__ import annotations

import math
from typing import Any


def check(name: str, ok: bool, detail: Any) -> dict[str, Any]:
    """One check of a report: ``{"name", "ok", "detail"}``."""
    return {"name": name, "ok": bool(ok), "detail": detail}


def rel_ok(a: float, b: float, rel: float = 1e-9) -> bool:
    """Equal within ``rel`` relative (1e-9 absolute near zero); never for non-finite values."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return False
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


def rate(part: int, whole: int) -> float:
    """``part / whole``; 0.0 for an empty whole."""
    return part / whole if whole else 0.0


def online_time_checks(*, shards: int, missing_shards: list[str], missing_parts: list[str], rows_in: int,
                       parsed: int, rejects: int, users_out: int | None, users_unique: bool, parts_users: int,
                       users_expected: int, result_uri: str, max_reject_rate: float) -> list[dict]:
    """The online-time checks (CONTRACT §1) from what the window's files hold."""
    out = [check("every shard has a result", not missing_shards and not missing_parts,
                 f"{shards} shards; missing shards: {missing_shards or 'none'}; "
                 f"missing results: {missing_parts or 'none'}"),
           check("rows_in == rows_parsed + rejects", rows_in == parsed + rejects and not missing_shards,
                 f"rows_in {rows_in}, parsed rows in shards {parsed}, rejects {rejects}")]
    if users_out is None:
        out.append(check("users out == users with an in-window event", False, f"{result_uri} is missing"))
    else:
        out.append(check("users out == users with an in-window event",
                         users_out == users_expected == parts_users and users_unique,
                         f"{users_out} users in the report, {parts_users} in the shard results, "
                         f"{users_expected} distinct users with a valid in-window event in the shards"))
    r = rate(rejects, rows_in)
    out.append(check("reject rate under threshold", r <= max_reject_rate,
                     f"{rejects} rejects of {rows_in} rows = {r:.4%} (threshold {max_reject_rate:.4%})"))
    return out


TOTAL_COLUMNS = ["Traffic", "EngageSum", "Load", "Play", "IP"]


def distinct_rows(*cols) -> bool:
    """No two rows equal on every one of ``cols``: by sorting, not a hash table (which took ~0.4 GiB more on a
    5M-play day's keys and play ids)."""
    import numpy as np

    arrays = [np.asarray(c) for c in cols]
    if len(arrays[0]) < 2:
        return True
    if len(arrays) == 2 and (packed := _packed_pair(*arrays)) is not None:
        packed.sort()  # its own array: sorted in place
        return not bool((packed[1:] == packed[:-1]).any())
    if len(arrays) == 1 and arrays[0].dtype.kind in "iub":  # one column of numbers: a plain sort (~4x lexsort's speed)
        s = np.sort(arrays[0])
        return not bool((s[1:] == s[:-1]).any())
    order = np.lexsort(arrays[::-1])
    same = np.ones(len(order) - 1, dtype=bool)
    for a in arrays:
        s = a[order]
        same &= s[1:] == s[:-1]
    return not bool(same.any())


def _packed_pair(a, b):
    """Two columns of non-negative integers as one int64 per row (``a`` in the high bits), equal exactly when
    both are; None when they do not fit in 63 bits (or are not integers)."""
    import numpy as np

    if a.dtype.kind not in "iu" or b.dtype.kind not in "iu" or not len(a):
        return None
    lo = min(int(a.min()), int(b.min()))
    if lo < 0:
        return None
    shift = int(b.max()).bit_length()
    if int(a.max()).bit_length() + shift > 63:
        return None
    out = a.astype(np.int64)  # a copy: shifted and merged in place (one array of 8 bytes a row at most)
    out <<= shift
    out |= b.astype(np.int64, copy=False)
    return out


def plays_day_checks(*, unique: int, plays, quarantine, duplicates: int, contrib_vid, vdaily: list[dict],
                     max_quarantine_rate: float, quarantine_uri: str) -> list[dict]:
    """The checks of one day's plays (CONTRACT §2, §5) that need only that day.

    ``plays`` has ``key, vid, playid, flow``; ``quarantine`` has ``key, reason``; ``contrib_vid`` is
    the day's per-vid contribution; ``vdaily`` the day's ``{"doc": ...}`` vdaily records.
    """
    ing, qua = len(plays), len(quarantine)
    out = [check("plays_accounted", unique == ing + qua and distinct_rows(plays["key"]),
                 {"unique": unique, "ingested": ing, "quarantined": qua, "duplicates": duplicates})]
    ids_ok = distinct_rows(plays["vid"], plays["playid"]) and bool((plays["playid"] > 0).all())
    out.append(check("play_ids_unique", ids_ok, {"plays": ing}))
    clicks = int(contrib_vid["ClickNum"].sum())
    clicks_docs = sum(g["ClickNum"] for r in vdaily for v in r["doc"].values() for g in v["Geo"].values())
    out.append(check("clicknum_equals_plays", clicks == ing == clicks_docs,
                     {"contrib": clicks, "vdaily_docs": clicks_docs, "ingested": ing}))
    flow = float(plays["flow"].sum())
    traffic = float(contrib_vid["Traffic"].sum())
    traffic_docs = float(sum(v["Traffic"] for r in vdaily for v in r["doc"].values()))
    out.append(check("traffic_equals_flow", rel_ok(traffic, flow) and rel_ok(traffic_docs, flow),
                     {"flow": flow, "contrib": traffic, "vdaily_docs": traffic_docs}))
    r = rate(qua, unique)
    reasons = quarantine["reason"].value_counts().to_dict() if qua else {}
    out.append(check("quarantine_rate", r <= max_quarantine_rate,
                     {"rate": r, "threshold": max_quarantine_rate, "quarantined": qua,
                      "reasons": {str(k): int(v) for k, v in reasons.items()}, "path": quarantine_uri}))
    return out


def documents_match(expected: dict, got: dict, close, diff, limit: int = 5) -> list[str]:
    """``expected`` / ``got``: ``{key: doc}``; the keys whose documents differ (``got`` may lack keys)."""
    bad = []
    for k, doc in expected.items():
        have = got.get(k)
        if have is None or not close(doc, have):
            bad.append(f"{k}: {diff(doc, have) if have is not None else 'missing'}")
            if len(bad) >= limit:
                break
    return bad


def contribution_matches_plays(contrib_vid, plays, rel: float = 1e-9) -> bool:
    """A day's stored per-vid contribution agrees with its plays (``vid, flow, comprate, playid``): the
    same vids, and per vid the play count, Σ flow, Σ comprate (``rel`` relative) and the last play id."""
    import numpy as np

    g = plays.groupby("vid", sort=True).agg(ClickNum=("flow", "size"), Traffic=("flow", "sum"),
                                            EngageSum=("comprate", "sum"), PlayID=("playid", "max"))
    c = contrib_vid.set_index("vid").sort_index()
    if list(g.index) != list(c.index):
        return False
    ints = all((g[k].to_numpy() == c[k].to_numpy()).all() for k in ("ClickNum", "PlayID"))
    floats = all(np.allclose(g[k].to_numpy(float), c[k].to_numpy(float), rtol=rel, atol=1e-9)
                 for k in ("Traffic", "EngageSum"))
    return bool(ints and floats)
