"""Play statistics core (CONTRACT §2, §3, §5): validation, vectorised rollups, documents.

Pure functions over pandas frames and plain values: no Airflow, no Redis, no files. Decoding and validation
live in ``video_analytics.play_decode`` (no pandas) and are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from video_analytics.conventions import TABLE_KEYS
from video_analytics.play_decode import (  # noqa: F401 - re-exported: the plays core is one namespace
    COMPRATE_MAX,
    COUNT_MAX,
    FIELDS,
    FLOW_MAX,
    NOKID,
    NUMERIC_FIELDS,
    PLAY_DOC_FIELDS,
    PLAY_DOC_SOURCES,
    QUARANTINE_REASONS,
    SEG_SCHEMA,
    SEGMENT_MAX,
    TEXT_DOC_FIELDS,
    TEXT_FIELDS,
    Decoded,
    SegmentTable,
    _as_float,
    _bad_names,
    _fields,
    build_segment_table,
    decode_columns,
    dumps,
    factorize,
    is_text,
    parse_segments,
    ratio,
    safe_name,
    safe_vid,
    segment_sums,
)


def decode_plays(keys: Sequence[str], s_raw: Sequence, j_raw: Sequence, z1_raw: Sequence, day: str
                 ) -> tuple[pd.DataFrame, pd.DataFrame, SegmentTable]:
    """Validate and decode the unique plays of a day (CONTRACT §5), in the given order.

    Returns ``(plays, quarantine, segments)``: ``plays`` has one row per valid play with the
    columns the rollups and play documents need; ``quarantine`` has ``key, reason, S, J, z1``
    (raw values) for the rest. Kids are checked later (``kid_reasons``). Frames over ``decode_columns``.
    """
    d = decode_columns(keys, s_raw, j_raw, z1_raw)
    c = d.columns
    plays = pd.DataFrame({"pos": d.pos, **{k: pd.Series(c[k], dtype=object) for k in ("key", "vid", "region")},
                          "flow": c["flow"], "comprate": c["comprate"], "ipkey": pd.Series(c["ipkey"], dtype=object),
                          "jcode": c["jcode"]})
    plays["uid"] = plays["vid"].str.slice(0, 4)
    for doc in (*TEXT_DOC_FIELDS.values(), "Htmap", "zz_uinfo"):
        plays[doc] = pd.Series(c[doc], dtype=object)
    quarantine = pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in d.quarantine.items()})
    return plays, quarantine, d.segtab


def parse_tables(rows: Iterable[tuple[str, str, object]]) -> tuple[dict[str, dict[str, int]], int]:
    """The day's load / play / region tables from ``(table, field, value)`` rows: ``{table: {field: int}}``
    and the number of entries that were not integers (taken as 0)."""
    out: dict[str, dict[str, int]] = {t: {} for t in TABLE_KEYS}
    bad = 0
    for t, f, v in rows:
        try:
            out[t][f] = int(v)
        except (TypeError, ValueError):
            try:
                out[t][f] = int(float(v))
            except (TypeError, ValueError, OverflowError):
                out[t][f] = 0
                bad += 1
    return out, bad


def play_doc_sources(columns: Iterable[str]) -> dict[str, str]:
    """``{document field: plays column}`` for the play-document fields among ``columns`` (a text field stored
    JSON-encoded keeps its ``__json`` suffix on both sides)."""
    have = set(columns)
    out: dict[str, str] = {}
    for f in PLAY_DOC_FIELDS[1:]:
        src = PLAY_DOC_SOURCES.get(f, f)
        if src in have:
            out[f] = src
        elif src + "__json" in have:
            out[f + "__json"] = src + "__json"
    return out


def play_doc_frame(plays: pd.DataFrame, day: str) -> pd.DataFrame:
    """The day's ``<vid>_play`` documents as a frame: ``coll``, ``_id`` and the document fields
    (``play_doc_sources``)."""
    docs = pd.DataFrame({"coll": plays["vid"] + "_play", "_id": plays["playid"], "Date": day})
    for f, src in play_doc_sources(plays.columns).items():
        docs[f] = plays[src]
    return docs


def kid_reasons(vids: pd.Series, kids: dict[str, str]) -> np.ndarray:
    """``bad_kid`` where a vid's kid is empty or contains ``.``/``$`` (``nokid`` is fine)."""
    return _bad_names([kids.get(v, "") for v in vids.tolist()])


def play_segments(plays: pd.DataFrame, segtab: SegmentTable) -> pd.DataFrame:
    """The day's per (vid, segment) ``heat`` (Σ count) and ``plays`` (number of K_J entries)."""
    t = segment_sums(plays["vid"].tolist() if len(plays) else [],
                     plays["jcode"].to_numpy() if len(plays) else np.zeros(0, np.int64), segtab)
    return pd.DataFrame({"vid": pd.Series(t.column("vid").to_pylist(), dtype=object),
                         **{c: t.column(c).to_numpy().astype(np.int64) for c in ("seg", "heat", "plays")}})


def _lookup(table: dict[str, int], keys: Iterable[str], count: int) -> np.ndarray:
    """``table[k]`` (0 where absent) per key of ``count`` keys."""
    get = table.get
    return np.fromiter((get(k, 0) for k in keys), dtype=np.int64, count=count)


def _name_ranks(names: Sequence[str]) -> np.ndarray:
    """Per distinct name its rank in Python's order of the names (``sorted``)."""
    ranks = np.empty(len(names), dtype=np.int64)
    ranks[np.argsort(np.asarray(names, dtype=object), kind="stable")] = np.arange(len(names))
    return ranks


def contributions(plays: pd.DataFrame, segs: pd.DataFrame, load: dict[str, int], play: dict[str, int],
                  region_load: dict[str, int]) -> dict[str, pd.DataFrame]:
    """One day's contributions: per vid, (vid, region), (vid, seg), uid, (uid, region), kid, (kid, region).

    ``plays`` needs ``vid, kid, region, flow, comprate, ipkey, playid`` (see ``coded_contributions``).
    """
    vc, vids = pd.factorize(plays["vid"].to_numpy(dtype=object))
    kc, kids = pd.factorize(plays["kid"].to_numpy(dtype=object))
    rc, regions = pd.factorize(plays["region"].to_numpy(dtype=object))
    return coded_contributions(vc, list(vids), kc, list(kids), rc, list(regions), plays["ipkey"].to_numpy(dtype=object),
                               plays["flow"].to_numpy(dtype=np.float64), plays["comprate"].to_numpy(dtype=np.float64),
                               plays["playid"].to_numpy(dtype=np.int64), segs, load, play, region_load)


def distinct_counts(group: np.ndarray, n_groups: int, values, rows_per_bucket: int = 1 << 18) -> np.ndarray:
    """Per group code ``0 .. n_groups - 1``: the number of distinct ``values`` among its rows (exact).

    ``values`` is one value per row (strings or integers; a list, a NumPy or an Arrow array). The rows are
    split into buckets by group code, so memory is that of ``rows_per_bucket`` rows, not of the whole day:
    each bucket's values get dense codes (an Arrow hash table) and its distinct (group, code) pairs are
    counted. A null is one more distinct value."""
    group = np.asarray(group)
    if group.dtype.kind not in "iu":
        group = group.astype(np.int64)
    out = np.zeros(n_groups, dtype=np.int64)
    n = len(group)
    if not n:
        return out
    if not isinstance(values, pa.Array | pa.ChunkedArray):
        values = pa.array(values, from_pandas=True)
    buckets = max(1, -(-n // rows_per_bucket))
    for b in range(buckets):
        idx = np.flatnonzero(group % buckets == b) if buckets > 1 else None
        vals = _take(values, idx)
        enc = pc.dictionary_encode(vals)
        codes = enc.indices.fill_null(len(enc.dictionary)).to_numpy(zero_copy_only=False)
        del enc, vals
        g = (group if idx is None else group[idx]).astype(np.int64)
        pairs = pd.unique((g << 32) | codes.astype(np.int64, copy=False))
        out += np.bincount(pairs >> 32, minlength=n_groups)
    return out


def _take(values: pa.Array | pa.ChunkedArray, idx: np.ndarray | None) -> pa.Array:
    """``values`` at the ascending positions ``idx`` (all when ``None``), as one array. A chunked array is
    taken from chunk by chunk: its ``take`` would first concatenate every chunk (the whole day's ips)."""
    if not isinstance(values, pa.ChunkedArray):
        return values if idx is None else values.take(pa.array(idx))
    if idx is None:
        return values.combine_chunks()
    bounds = np.cumsum([0, *(len(c) for c in values.chunks)])
    cuts = np.searchsorted(idx, bounds)
    parts = [c.take(pa.array(idx[cuts[i]: cuts[i + 1]] - bounds[i])) for i, c in enumerate(values.chunks)
             if cuts[i + 1] > cuts[i]]
    return pa.concat_arrays(parts) if parts else pa.array([], type=values.type)


def _names(codes: np.ndarray, names: Sequence[str]) -> np.ndarray:
    return np.asarray(list(names), dtype=object)[codes] if len(codes) else np.zeros(0, dtype=object)


def coded_contributions(vid_code: np.ndarray, vids: Sequence[str], kid_code: np.ndarray, kids: Sequence[str],
                        region_code: np.ndarray, regions: Sequence[str], ip, flow: np.ndarray,
                        comprate: np.ndarray, playid: np.ndarray, segs: pd.DataFrame, load: dict[str, int],
                        play: dict[str, int], region_load: dict[str, int], ip_counts: np.ndarray | None = None
                        ) -> dict[str, pd.DataFrame]:
    """``contributions`` from the plays' columns as integer codes into the lists of their distinct values
    (``vid_code`` indexes ``vids``, ...) and ``ip`` the plays' ips (any values: only their distinctness per vid
    counts, see ``distinct_counts``), one entry per play in the day's order: about 40 bytes per play
    instead of Python strings. Sums add each group's plays in play order, so the result does not depend
    on how the plays were read (chunks, row groups), only on their order. ``ip_counts``: the distinct ips per
    vid code, when the caller counted them already, or a callable giving them once they are needed (after the
    sums: the caller may count them meanwhile; ``ip`` is then not used)."""
    df = pd.DataFrame({"v": np.asarray(vid_code), "k": np.asarray(kid_code), "r": np.asarray(region_code),
                       "flow": flow, "comprate": comprate, "playid": playid}, copy=False)
    a = df.groupby("v", sort=True).agg(k=("k", "first"), ClickNum=("flow", "size"), Traffic=("flow", "sum"),
                                       EngageSum=("comprate", "sum"), PlayID=("playid", "max"))
    # (vid, region) as one int64 key: one factorisation instead of two and their product (memory at 5M plays)
    df["vr"] = df["v"].to_numpy().astype(np.int64) * max(len(regions), 1) + df["r"].to_numpy()
    df = df.drop(columns=["v", "r", "playid"])  # no copy (copy-on-write); pandas 3.1 deprecates inplace
    b = df.groupby("vr", sort=True).agg(k=("k", "first"), ClickNum=("flow", "size"), Traffic=("flow", "sum"),
                                        EngageSum=("comprate", "sum"))
    del df
    b_v, b_r = np.divmod(b.index.to_numpy(), max(len(regions), 1))
    if ip_counts is None:  # IP: distinct ips per vid
        ipn = distinct_counts(vid_code, len(vids), ip)
    else:
        ipn = ip_counts() if callable(ip_counts) else ip_counts
    codes = a.index.to_numpy()
    vname = _names(codes, vids)
    vid = pd.DataFrame({"vid": vname, "uid": np.asarray([v[:4] for v in vname.tolist()], dtype=object),
                        "kid": _names(a["k"].to_numpy(), kids), "ClickNum": a["ClickNum"].to_numpy(dtype=np.int64),
                        "Traffic": a["Traffic"].to_numpy(), "EngageSum": a["EngageSum"].to_numpy(),
                        "IP": ipn[codes].astype(np.int64), "PlayID": a["PlayID"].to_numpy(dtype=np.int64)})
    # rows in the order of their names: by the names' ranks (integers), not by comparing strings
    vrank = _name_ranks(vids)
    vid = vid.iloc[np.argsort(vrank[codes], kind="stable")].reset_index(drop=True)
    vid_names = vid["vid"].tolist()
    vid["Load"] = _lookup(load, vid_names, len(vid_names))
    vid["Play"] = _lookup(play, vid_names, len(vid_names))
    order = np.argsort(vrank[b_v] * max(len(regions), 1) + _name_ranks(regions)[b_r], kind="stable")
    b_v, b_r = b_v[order], b_r[order]
    bv = _names(b_v, vids)
    br = _names(b_r, regions)
    vr = pd.DataFrame({"vid": bv, "region": br, "uid": np.asarray([v[:4] for v in bv.tolist()], dtype=object),
                       "kid": _names(b["k"].to_numpy()[order], kids),
                       "ClickNum": b["ClickNum"].to_numpy(dtype=np.int64)[order],
                       "Traffic": b["Traffic"].to_numpy()[order], "EngageSum": b["EngageSum"].to_numpy()[order]})
    vr["Load"] = _lookup(region_load, (v + r for v, r in zip(bv.tolist(), br.tolist(), strict=True)), len(bv))
    uid = vid.groupby("uid", sort=True)[["Traffic", "EngageSum", "Load", "Play", "IP"]].sum().reset_index()
    ur = vr.groupby(["uid", "region"], sort=True)[["ClickNum", "Traffic", "EngageSum"]].sum().reset_index()
    kv = vid[vid["kid"] != NOKID]
    kid = kv.groupby(["uid", "kid"], sort=True)[["Traffic", "EngageSum", "Load", "Play", "IP"]].sum().reset_index()
    kr = vr[vr["kid"] != NOKID].groupby(["uid", "kid", "region"], sort=True)[
        ["ClickNum", "Traffic", "EngageSum", "Load"]].sum().reset_index()
    return {"vid": vid, "vid_region": vr, "vid_seg": segs.reset_index(drop=True), "uid": uid,
            "uid_region": ur, "kid": kid, "kid_region": kr}


# ---- documents -------------------------------------------------------------------------------------------

def _records(df: pd.DataFrame, cols: Sequence[str]) -> Iterable[tuple]:
    return zip(*(df[c].tolist() for c in cols), strict=True)


def _geo(df: pd.DataFrame, keys: Sequence[str], load: bool) -> dict[tuple, dict]:
    """``{key tuple: {region: {ClickNum, Traffic, EngageSum, Load}}}``; Load 0 unless ``load``."""
    def values(col: str, dtype) -> list:  # a column as Python ints or floats, read once
        return df[col].to_numpy(dtype=dtype).tolist()

    out: dict[tuple, dict] = {}
    rows = zip(zip(*(df[c].tolist() for c in keys), strict=True), df["region"].tolist(),
               values("ClickNum", np.int64), values("Traffic", np.float64), values("EngageSum", np.float64),
               values("Load", np.int64) if load else [0] * len(df), strict=True)
    for k, r, c, t, e, lo in rows:
        out.setdefault(k, {})[r] = {"ClickNum": c, "Traffic": t, "EngageSum": e, "Load": lo}
    return out


def vdaily_docs(c: dict[str, pd.DataFrame]) -> dict[str, dict]:
    """``{uid: {vid: {...}}}``: the ``<uid>_vdaily`` document of the day, per uid."""
    geo = _geo(c["vid_region"], ["vid"], load=True)
    out: dict[str, dict] = {}
    for vid, uid, t, e, load, play, ip in _records(c["vid"], ["vid", "uid", "Traffic", "EngageSum", "Load",
                                                                  "Play", "IP"]):
        out.setdefault(uid, {})[vid] = {
            "Traffic": float(t), "EngageSum": float(e), "Geo": geo.get((vid,), {}), "Load": int(load),
            "Play": int(play), "Click": ratio(play, load), "IP": int(ip), "Engage": ratio(e, play)}
    return out


def daily_docs(c: dict[str, pd.DataFrame]) -> dict[str, dict]:
    """``{uid: {...}}``: the ``<uid>_daily`` document of the day."""
    geo = _geo(c["uid_region"], ["uid"], load=False)
    return {uid: {"Traffic": float(t), "EngageSum": float(e), "Load": int(load), "Play": int(play),
                  "IP": int(ip), "Geo": geo.get((uid,), {})}
            for uid, t, e, load, play, ip in _records(c["uid"], ["uid", "Traffic", "EngageSum", "Load", "Play",
                                                                   "IP"])}


def type_docs(c: dict[str, pd.DataFrame]) -> dict[str, dict]:
    """``{uid: {kid: {...}}}``: the ``<uid>_type`` document of the day (kids other than nokid)."""
    geo = _geo(c["kid_region"], ["uid", "kid"], load=True)
    out: dict[str, dict] = {}
    for uid, kid, t, e, load, play, ip in _records(c["kid"], ["uid", "kid", "Traffic", "EngageSum", "Load",
                                                                  "Play", "IP"]):
        out.setdefault(uid, {})[kid] = {"Traffic": float(t), "EngageSum": float(e), "Load": int(load),
                                        "Play": int(play), "IP": int(ip), "Geo": geo.get((uid, kid), {})}
    return out


def allocate_ids(vids: pd.Series, last: dict[str, int]) -> np.ndarray:
    """Play ids for plays of ``vids`` (in order): each vid continues from ``last[vid]`` (the id before its
    first new play)."""
    rank = vids.groupby(vids, sort=False).cumcount().to_numpy() + 1
    base = vids.map(last).to_numpy(dtype=np.int64)
    return base + rank


def close(a, b, rel: float = 1e-9) -> bool:
    """Field-by-field equality of documents: floats within ``rel`` relative, the rest exactly."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k], rel) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y, rel) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        if type(a) is bool or type(b) is bool or not isinstance(a, int | float) or not isinstance(b, int | float):
            return False
        if type(a) is not type(b):
            return False
        return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)
    return type(a) is type(b) and a == b


def diff(a, b, path: str = "", rel: float = 1e-9, limit: int = 5) -> list[str]:
    """The first differing paths between two documents (for reports)."""
    out: list[str] = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: {'missing left' if k not in a else 'missing right'}")
            else:
                out.extend(diff(a[k], b[k], f"{path}.{k}", rel, limit))
            if len(out) >= limit:
                break
    elif not close(a, b, rel):
        out.append(f"{path}: {a!r} != {b!r}")
    return out[:limit]
