"""Play statistics core (CONTRACT §2, §3, §5): validation, vectorised rollups, documents.

Pure functions over pandas frames and plain values: no Airflow, no Redis, no files.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import ujson

from video_analytics.conventions import TABLE_KEYS
from video_analytics.segments import play_runs

NOKID = "nokid"
FIELDS = ("starttime", "country", "region", "city", "ip", "os", "browser", "flow", "comprate")
NUMERIC_FIELDS = ("flow", "comprate")
TEXT_FIELDS = ("starttime", "country", "region", "city", "ip", "os", "browser")
# Sane bounds (CONTRACT §5 "numbers out of range"): a play's flow and completion rate, a segment
# number and its count. Beyond them a play is quarantined, so no total can overflow to infinity.
FLOW_MAX = 1e12
COMPRATE_MAX = 1e6
SEGMENT_MAX = 2**31 - 1
COUNT_MAX = 2**31 - 1
_INT64 = (-(2**63), 2**63 - 1)
# Every quarantine reason decode_plays / kid_reasons give (README lists each one).
QUARANTINE_REASONS = ("bad_vid", "missing_S", "missing_J", "invalid_json_S", "invalid_json_J", "bad_segments",
                      *(f"missing_field:{f}" for f in FIELDS), *(f"non_text:{f}" for f in TEXT_FIELDS),
                      *(f"non_numeric:{f}" for f in NUMERIC_FIELDS), *(f"out_of_range:{f}" for f in NUMERIC_FIELDS),
                      "bad_region", "bad_kid")
# S field -> play document field, for the fields copied as they are.
TEXT_DOC_FIELDS = {"starttime": "PlayTime", "ip": "PIP", "country": "Country", "city": "PGeo",
                   "os": "OS", "browser": "Browser"}
PLAY_DOC_FIELDS = ("Date", "PlayTime", "PIP", "Engage", "Country", "Provinces", "PGeo", "Htmap", "OS",
                   "Browser", "zz_uinfo")
# play document field -> column of the plays frame, where the names differ
PLAY_DOC_SOURCES = {"Engage": "comprate", "Provinces": "region"}

_BAD = object()


def dumps(obj) -> str:
    """Compact JSON exactly as the legacy job wrote it (``ujson.dumps`` defaults)."""
    return ujson.dumps(obj)


def ratio(num, den) -> float:
    """``num / den`` as a float; 0.0 when the denominator is 0 (CONTRACT §6)."""
    return float(num) / den if den else 0.0


def safe_name(name: str) -> bool:
    """A usable MongoDB field name: non-empty, without ``.``, ``$`` or NUL."""
    return bool(name) and "." not in name and "$" not in name and "\x00" not in name


def safe_vid(vid: str) -> bool:
    """A usable vid: a safe field name that also makes valid collection and file names
    (``<vid>_play``, ``<uid>_stat``): no ``/`` or ``\\``."""
    return safe_name(vid) and "/" not in vid and "\\" not in vid


def is_text(value) -> bool:
    """What a text field of ``K_S`` may hold: a string, or a number as the legacy job accepted one
    (an int within 64 bits, a finite float); never an object, a list, a boolean or null."""
    t = type(value)
    if t is str:
        return True
    if t is int:
        return _INT64[0] <= value <= _INT64[1]
    if t is float:
        return math.isfinite(value)
    return False


def _loads(raw):
    try:
        return ujson.loads(raw)
    except (ValueError, TypeError, OverflowError):
        return _BAD


def parse_segments(raw) -> tuple[list[int], list[int]] | str:
    """``K_J`` text -> (segments, counts), or a quarantine reason."""
    data = _loads(raw)
    if data is _BAD:
        return "invalid_json_J"
    if not isinstance(data, list):
        return "bad_segments"
    segs: list[int] = []
    cnts: list[int] = []
    for item in data:
        if not isinstance(item, list) or len(item) != 2 or type(item[0]) is not int or type(item[1]) is not int:
            return "bad_segments"
        if not (1 <= item[0] <= SEGMENT_MAX and 0 <= item[1] <= COUNT_MAX):
            return "bad_segments"
        segs.append(item[0])
        cnts.append(item[1])
    return segs, cnts


@dataclass
class SegmentTable:
    """The distinct ``K_J`` values of a day, parsed once each (plays refer to them by code)."""

    htmap: list[str]          # per distinct value: the play's merged runs as compact JSON
    lengths: np.ndarray       # per distinct value: number of K_J entries
    offsets: np.ndarray       # per distinct value: start in the flat arrays
    segs: np.ndarray          # flat segment numbers
    cnts: np.ndarray          # flat counts


def build_segment_table(uniques: Sequence) -> tuple[SegmentTable, list[str | None]]:
    """Parse each distinct ``K_J`` once; return the table and a reason (or None) per value."""
    reasons: list[str | None] = []
    htmap: list[str] = []
    lengths: list[int] = []
    flat_s: list[int] = []
    flat_c: list[int] = []
    for raw in uniques:
        parsed = parse_segments(raw)
        if isinstance(parsed, str):
            reasons.append(parsed)
            htmap.append("[]")
            lengths.append(0)
            continue
        segs, cnts = parsed
        reasons.append(None)
        htmap.append(dumps(play_runs(zip(segs, cnts, strict=True))))
        lengths.append(len(segs))
        flat_s.extend(segs)
        flat_c.extend(cnts)
    lengths_a = np.asarray(lengths, dtype=np.int64)
    offsets = np.zeros(len(lengths_a), dtype=np.int64)
    if len(lengths_a) > 1:
        np.cumsum(lengths_a[:-1], out=offsets[1:])
    table = SegmentTable(htmap, lengths_a, offsets, np.asarray(flat_s, dtype=np.int64),
                         np.asarray(flat_c, dtype=np.int64))
    return table, reasons


def _as_float(values: list) -> np.ndarray:
    """Values as float64 (what the legacy ``float(x)`` accepted); NaN where it fails."""
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        out = np.empty(len(values), dtype=np.float64)
        for i, v in enumerate(values):
            try:
                out[i] = float(v)
            except (TypeError, ValueError, OverflowError):
                out[i] = np.nan
        return out


def _as_str(values: list) -> list[str]:
    return [v if type(v) is str else str(v) for v in values]


def _strs(values: list, types: set) -> list[str]:
    """``_as_str(values)``, without the copy when they are all strings already."""
    return values if types <= {str} and None not in values else _as_str(values)


def _bad_names(names, ok=safe_name) -> np.ndarray:
    """Per value: not a usable name by ``ok`` (checked once per distinct value)."""
    codes, uniq = pd.factorize(np.asarray(names, dtype=object))
    bad = np.fromiter((not ok(u) for u in uniq), dtype=bool, count=len(uniq))
    return bad[codes] if len(codes) else np.zeros(0, dtype=bool)


def _is_none(values: list) -> np.ndarray:
    """Per value: absent or JSON null (a NaN is present, and non-numeric)."""
    return np.equal(np.asarray(values, dtype=object), None).astype(bool) if values else np.zeros(0, dtype=bool)


class _WellFormedS(msgspec.Struct):
    """A ``K_S`` with every field present as a string or a number (the common case). Decoding into it
    validates in C; anything else (null, nested, boolean, duplicate-free oddities, non-standard JSON) goes to
    the ``ujson`` path, which gives the quarantine reasons. Where this decoder succeeds, ``ujson`` reads the
    same values (tested), so the fast path changes speed only."""

    starttime: str | int | float
    country: str | int | float
    region: str | int | float
    city: str | int | float
    ip: str | int | float
    os: str | int | float
    browser: str | int | float
    flow: str | int | float
    comprate: str | int | float


_S_DECODER = msgspec.json.Decoder(_WellFormedS)
_ASTUPLE = msgspec.structs.astuple
_NO_FIELDS = (None,) * len(FIELDS)


def _s_row(raw, fast: bool = True):
    """One ``K_S`` as a tuple of ``FIELDS`` (``None`` where absent), or ``None`` when it is not a JSON object."""
    if fast:
        try:
            return _ASTUPLE(_S_DECODER.decode(raw))
        except Exception:  # noqa: BLE001, S110 - anything unusual: the ujson path decides
            pass
    d = _loads(raw)
    if type(d) is not dict:
        return None
    return tuple(d.get(f) for f in FIELDS)


def _fields(s_raw: Sequence, fast: bool = True) -> tuple[dict[str, list], np.ndarray]:
    """``K_S`` fields as columns (``None`` where absent, missing or not an object), and per play whether
    ``K_S`` is present but not a JSON object."""
    rows = [_s_row(r, fast) if r is not None else _NO_FIELDS for r in s_raw]
    bad = np.fromiter((r is None for r in rows), dtype=bool, count=len(rows))
    if bad.any():
        rows = [_NO_FIELDS if r is None else r for r in rows]
    cols = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in FIELDS]
    return dict(zip(FIELDS, cols, strict=True)), bad


@dataclass
class Decoded:
    """A chunk of plays, validated: the valid plays' columns (in the given order) and the quarantined rows."""

    pos: np.ndarray               # position of each valid play in the input
    columns: dict[str, list | np.ndarray]  # key, vid, region, ipkey, flow, comprate, jcode, zz_uinfo, S fields
    quarantine: dict[str, list]   # key, reason, S, J, z1 (raw values)
    segtab: SegmentTable


def decode_columns(keys: Sequence[str], s_raw: Sequence, j_raw: Sequence, z1_raw: Sequence, fast: bool = True
                   ) -> Decoded:
    """Validate and decode plays (CONTRACT §5) into plain columns (lists and NumPy arrays, no frames).

    The first failing check names a play's quarantine reason, in this order: vid, missing values, ``K_S``
    JSON, ``K_J``, missing fields, text fields, numbers, ranges, region. Kids are checked later.
    """
    n = len(keys)
    keys = list(keys)
    vid = [k[:7] for k in keys]
    reason = np.full(n, None, dtype=object)

    def mark(mask: np.ndarray, why) -> None:
        free = mask & np.equal(reason, None)
        reason[free] = why if isinstance(why, str) else np.asarray(why, dtype=object)[free]

    mark(_bad_names(vid, safe_vid), "bad_vid")
    j_arr = np.asarray(j_raw, dtype=object) if n else np.empty(0, dtype=object)
    if None in s_raw:
        mark(_is_none(list(s_raw)), "missing_S")
    if None in j_raw:
        mark(np.equal(j_arr, None), "missing_J")

    cols, not_object = _fields(s_raw, fast)
    mark(not_object, "invalid_json_S")

    codes, uniques = pd.factorize(j_arr, use_na_sentinel=True)
    segtab, j_reasons = build_segment_table(list(uniques))
    if any(r is not None for r in j_reasons):
        jr = np.asarray(j_reasons + [None], dtype=object)[codes]  # code -1 (missing) -> None
        mark(np.not_equal(jr, None), jr)

    for f in FIELDS:
        if None in cols[f]:
            mark(_is_none(cols[f]), f"missing_field:{f}")
    types = {f: set(map(type, cols[f])) - {type(None)} for f in TEXT_FIELDS}  # None: marked missing above
    for f in TEXT_FIELDS:
        if not types[f] <= {str}:
            mark(np.fromiter((not is_text(v) for v in cols[f]), dtype=bool, count=n), f"non_text:{f}")
    nums = {}
    for f in NUMERIC_FIELDS:
        arr = _as_float(cols[f])
        nums[f] = arr
        mark(~np.isfinite(arr), f"non_numeric:{f}")
    with np.errstate(invalid="ignore"):
        mark(~((nums["flow"] >= 0) & (nums["flow"] <= FLOW_MAX)), "out_of_range:flow")
        mark(~((nums["comprate"] >= 0) & (nums["comprate"] <= COMPRATE_MAX)), "out_of_range:comprate")
    region = _strs(cols["region"], types["region"])
    mark(_bad_names(region), "bad_region")

    ok = np.equal(reason, None)
    bad = np.flatnonzero(~ok)
    quarantine = {"key": [keys[i] for i in bad], "reason": reason[bad].tolist(), "S": [s_raw[i] for i in bad],
                  "J": [j_raw[i] for i in bad], "z1": [z1_raw[i] for i in bad]}
    idx = np.flatnonzero(ok)
    everything = len(idx) == n

    pick = operator.itemgetter(*idx.tolist()) if 1 < len(idx) < n else None

    def take(values: list) -> list:
        if everything:
            return values
        return list(pick(values)) if pick is not None else [values[i] for i in idx]

    htmap = segtab.htmap
    jcode = codes[idx].astype(np.int64)
    columns = {"key": take(keys), "vid": take(vid), "region": take(region),
               "flow": nums["flow"][idx], "comprate": nums["comprate"][idx],
               "ipkey": take(_strs(cols["ip"], types["ip"])), "jcode": jcode,
               "Htmap": [htmap[c] for c in jcode.tolist()],
               "zz_uinfo": [None if z is None else dumps(_text(z)) for z in take(list(z1_raw))]}
    for f, doc in TEXT_DOC_FIELDS.items():
        columns[doc] = take(cols[f])
    return Decoded(idx.astype(np.int64), columns, quarantine, segtab)


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


def _text(raw) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else str(raw)


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


def play_doc_frame(plays: pd.DataFrame, day: str) -> pd.DataFrame:
    """The day's ``<vid>_play`` documents as a frame: ``coll``, ``_id`` and the document fields
    (a text field stored JSON-encoded keeps its ``__json`` suffix)."""
    docs = pd.DataFrame({"coll": plays["vid"] + "_play", "_id": plays["playid"], "Date": day})
    for f in PLAY_DOC_FIELDS[1:]:
        src = PLAY_DOC_SOURCES.get(f, f)
        if src in plays.columns:
            docs[f] = plays[src]
        elif src + "__json" in plays.columns:
            docs[f + "__json"] = plays[src + "__json"]
    return docs


def kid_reasons(vids: pd.Series, kids: dict[str, str]) -> np.ndarray:
    """``bad_kid`` where a vid's kid is empty or contains ``.``/``$`` (``nokid`` is fine)."""
    return _bad_names([kids.get(v, "") for v in vids.tolist()])


def play_segments(plays: pd.DataFrame, segtab: SegmentTable) -> pd.DataFrame:
    """The day's per (vid, segment) ``heat`` (Σ count) and ``plays`` (number of K_J entries)."""
    return segment_sums(plays["vid"].tolist() if len(plays) else [],
                        plays["jcode"].to_numpy() if len(plays) else np.zeros(0, np.int64), segtab)


def segment_sums(vid: Sequence[str], jcode: np.ndarray, segtab: SegmentTable) -> pd.DataFrame:
    """``play_segments`` from plain columns: per (vid, segment) ``heat`` and ``plays``, sorted by vid and
    segment; exact int64 sums (NumPy, one pass over each distinct (vid, K_J) pair's segments)."""
    if not len(vid) or not len(segtab.segs):
        return pd.DataFrame({"vid": pd.Series([], dtype=object), "seg": pd.Series([], dtype=np.int64),
                             "heat": pd.Series([], dtype=np.int64), "plays": pd.Series([], dtype=np.int64)})
    vcode, vids = pd.factorize(np.asarray(vid, dtype=object), sort=True)
    nj = len(segtab.lengths)
    pair, n = np.unique(vcode.astype(np.int64) * nj + np.asarray(jcode, dtype=np.int64), return_counts=True)
    pj = pair % nj
    lens = segtab.lengths[pj]
    keep = lens > 0
    pair, n, pj, lens = pair[keep], n[keep], pj[keep], lens[keep]
    if not len(pair):
        return segment_sums([], np.zeros(0, np.int64), segtab)
    flat = np.repeat(segtab.offsets[pj] - (np.cumsum(lens) - lens), lens) + np.arange(int(lens.sum()))
    weight = np.repeat(n, lens)
    key = (np.repeat(pair // nj, lens) << 32) | segtab.segs[flat]  # segments are < 2**31
    order = np.argsort(key, kind="stable")
    key = key[order]
    first = np.concatenate(([0], np.flatnonzero(np.diff(key)) + 1))
    heat = np.add.reduceat((segtab.cnts[flat] * weight)[order], first)
    plays = np.add.reduceat(weight[order], first)
    ukey = key[first]
    return pd.DataFrame({"vid": pd.Series(np.asarray(vids, dtype=object)[ukey >> 32], dtype=object),
                         "seg": ukey & 0xFFFFFFFF, "heat": heat.astype(np.int64), "plays": plays.astype(np.int64)})


def _lookup(table: dict[str, int], keys: Iterable[str]) -> np.ndarray:
    return np.fromiter((table.get(k, 0) for k in keys), dtype=np.int64)


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
    group = np.asarray(group, dtype=np.int64)
    out = np.zeros(n_groups, dtype=np.int64)
    n = len(group)
    if not n:
        return out
    if not isinstance(values, pa.Array | pa.ChunkedArray):
        values = pa.array(values, from_pandas=True)
    buckets = max(1, -(-n // rows_per_bucket))
    for b in range(buckets):
        idx = np.flatnonzero(group % buckets == b) if buckets > 1 else None
        vals = values if idx is None else values.take(pa.array(idx))
        if isinstance(vals, pa.ChunkedArray):
            vals = vals.combine_chunks()  # one hash table (unifying per-chunk dictionaries costs 5x more)
        enc = pc.dictionary_encode(vals)
        codes = enc.indices.fill_null(len(enc.dictionary)).to_numpy(zero_copy_only=False)
        del enc, vals
        g = group if idx is None else group[idx]
        pairs = pd.unique((g << 32) | codes.astype(np.int64, copy=False))
        out += np.bincount(pairs >> 32, minlength=n_groups)
    return out


def _names(codes: np.ndarray, names: Sequence[str]) -> np.ndarray:
    return np.asarray(list(names), dtype=object)[codes] if len(codes) else np.zeros(0, dtype=object)


def coded_contributions(vid_code: np.ndarray, vids: Sequence[str], kid_code: np.ndarray, kids: Sequence[str],
                        region_code: np.ndarray, regions: Sequence[str], ip, flow: np.ndarray,
                        comprate: np.ndarray, playid: np.ndarray, segs: pd.DataFrame, load: dict[str, int],
                        play: dict[str, int], region_load: dict[str, int]) -> dict[str, pd.DataFrame]:
    """``contributions`` from the plays' columns as integer codes into the lists of their distinct values
    (``vid_code`` indexes ``vids``, ...) and ``ip`` the plays' ips (any values: only their distinctness per vid
    counts, see ``distinct_counts``), one entry per play in the day's order: about 40 bytes per play
    instead of Python strings. Sums add each group's plays in play order, so the result does not depend
    on how the plays were read (chunks, row groups), only on their order."""
    df = pd.DataFrame({"v": np.asarray(vid_code), "k": np.asarray(kid_code), "r": np.asarray(region_code),
                       "flow": flow, "comprate": comprate, "playid": playid}, copy=False)
    a = df.groupby("v", sort=True).agg(k=("k", "first"), ClickNum=("flow", "size"), Traffic=("flow", "sum"),
                                       EngageSum=("comprate", "sum"), PlayID=("playid", "max"))
    # (vid, region) as one int64 key: one factorisation instead of two and their product (memory at 5M plays)
    df["vr"] = df["v"].to_numpy().astype(np.int64) * max(len(regions), 1) + df["r"].to_numpy()
    df.drop(columns=["v", "r", "playid"], inplace=True)
    b = df.groupby("vr", sort=True).agg(k=("k", "first"), ClickNum=("flow", "size"), Traffic=("flow", "sum"),
                                        EngageSum=("comprate", "sum"))
    del df
    b_v, b_r = np.divmod(b.index.to_numpy(), max(len(regions), 1))
    ipn = distinct_counts(vid_code, len(vids), ip)  # IP: distinct ips per vid
    codes = a.index.to_numpy()
    vname = _names(codes, vids)
    vid = pd.DataFrame({"vid": vname, "uid": np.asarray([v[:4] for v in vname.tolist()], dtype=object),
                        "kid": _names(a["k"].to_numpy(), kids), "ClickNum": a["ClickNum"].to_numpy(dtype=np.int64),
                        "Traffic": a["Traffic"].to_numpy(), "EngageSum": a["EngageSum"].to_numpy(),
                        "IP": ipn[codes].astype(np.int64), "PlayID": a["PlayID"].to_numpy(dtype=np.int64)})
    vid = vid.iloc[np.argsort(vname, kind="stable")].reset_index(drop=True)
    vid["Load"] = _lookup(load, vid["vid"])
    vid["Play"] = _lookup(play, vid["vid"])
    bv = _names(b_v, vids)
    br = _names(b_r, regions)
    vr = pd.DataFrame({"vid": bv, "region": br, "uid": np.asarray([v[:4] for v in bv.tolist()], dtype=object),
                       "kid": _names(b["k"].to_numpy(), kids), "ClickNum": b["ClickNum"].to_numpy(dtype=np.int64),
                       "Traffic": b["Traffic"].to_numpy(), "EngageSum": b["EngageSum"].to_numpy()})
    if len(vr):
        order = sorted(range(len(vr)), key=lambda i: (bv[i], br[i]))
        vr = vr.iloc[order].reset_index(drop=True)
    vr["Load"] = _lookup(region_load, (vr["vid"] + vr["region"]))
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
    out: dict[tuple, dict] = {}
    cols = [*keys, "region", "ClickNum", "Traffic", "EngageSum"] + (["Load"] if load else [])
    for row in _records(df, cols):
        k = tuple(row[: len(keys)])
        r, c, t, e = row[len(keys): len(keys) + 4]
        out.setdefault(k, {})[r] = {"ClickNum": int(c), "Traffic": float(t), "EngageSum": float(e),
                                    "Load": int(row[-1]) if load else 0}
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
