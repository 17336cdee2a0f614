"""Play decoding (CONTRACT §5): validation of a chunk of raw plays, their segment sums and the constants the
play documents share. Plain lists, NumPy and Arrow only: no pandas, so that ``ingest_plays``' decoder
processes start lean (``include.plays.decoders``). ``video_analytics.plays`` re-exports all of it."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
import numpy as np
import pyarrow as pa
import ujson

from video_analytics import play_arrow, play_fast
from video_analytics.segments import play_runs

NOKID = "nokid"
FIELDS = ("starttime", "country", "region", "city", "ip", "os", "browser", "flow", "comprate")
NUMERIC_FIELDS = ("flow", "comprate")
TEXT_FIELDS = ("starttime", "country", "region", "city", "ip", "os", "browser")
# Sane bounds (CONTRACT §5 "numbers out of range"): a play's flow and completion rate, a segment
# number and its count. Beyond them a play is quarantined, so no total can overflow to infinity.
FLOW_MAX = 1e12
COMPRATE_MAX = 1e6
COUNT_MAX = 2**31 - 1
# Size limits (CONTRACT §2): beyond them a play is ``too_large``, so no document nears MongoDB's 16 MiB.
S_MAX_BYTES = 64 * 1024
J_MAX_BYTES = 1 << 20
SEGMENT_MAX = 43_200  # 24 hours of 2-second segments
_INT64 = (-(2**63), 2**63 - 1)
# Every quarantine reason decode_plays / kid_reasons give (README lists each one).
QUARANTINE_REASONS = ("bad_vid", "missing_S", "missing_J", "too_large", "invalid_json_S", "invalid_json_J",
                      "bad_segments",
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


def over_bytes(raw, limit: int) -> bool:
    """Whether ``raw`` (bytes, or text as UTF-8) is longer than ``limit`` bytes; text is encoded only when
    its length alone cannot tell."""
    n = len(raw)
    if n > limit:
        return True
    if n * 4 <= limit or type(raw) is not str:
        return False
    return len(raw.encode("utf-8", "surrogatepass")) > limit


def _loads(raw):
    try:
        return ujson.loads(raw)
    except (ValueError, TypeError, OverflowError):
        return _BAD


def parse_segments(raw) -> tuple[list[int], list[int]] | str:
    """``K_J`` text -> (segments, counts), or a quarantine reason: ``too_large`` for a text over
    ``J_MAX_BYTES`` (not parsed) or a well-formed list naming a segment above ``SEGMENT_MAX``."""
    if over_bytes(raw, J_MAX_BYTES):
        return "too_large"
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
        if not (1 <= item[0] and 0 <= item[1] <= COUNT_MAX):
            return "bad_segments"
        segs.append(item[0])
        cnts.append(item[1])
    if segs and max(segs) > SEGMENT_MAX:
        return "too_large"
    return segs, cnts


@dataclass
class SegmentTable:
    """The distinct ``K_J`` values of a day, parsed once each (plays refer to them by code)."""

    htmap: list[str]          # per distinct value: the play's merged runs as compact JSON
    lengths: np.ndarray       # per distinct value: number of K_J entries
    offsets: np.ndarray       # per distinct value: start in the flat arrays
    segs: np.ndarray          # flat segment numbers
    cnts: np.ndarray          # flat counts


_J_CACHE: dict = {}
_J_CACHE_MAX = 100_000  # distinct K_J values kept per process (a day has a few thousand)


def _parsed_segments(raw) -> tuple[list[int], list[int], str] | str:
    """``parse_segments`` of a ``K_J`` value with its merged runs as JSON, or its reason; remembered per
    process, so that a decoder parses each distinct value once, not once per chunk."""
    hit = _J_CACHE.get(raw)
    if hit is None:
        parsed = parse_segments(raw)
        if parsed == "too_large":  # not remembered: the cache would keep the large value alive
            return parsed
        hit = parsed if isinstance(parsed, str) else (*parsed, dumps(play_runs(zip(*parsed, strict=True))))
        if len(_J_CACHE) >= _J_CACHE_MAX:
            _J_CACHE.clear()
        _J_CACHE[raw] = hit
    return hit


def build_segment_table(uniques: Sequence) -> tuple[SegmentTable, list[str | None]]:
    """Parse each distinct ``K_J`` once; return the table and a reason (or None) per value."""
    if play_fast.HAVE_FAST:
        return play_fast.segment_table(uniques)
    reasons: list[str | None] = []
    htmap: list[str] = []
    lengths: list[int] = []
    flat_s: list[int] = []
    flat_c: list[int] = []
    for raw in uniques:
        parsed = _parsed_segments(raw)
        if isinstance(parsed, str):
            reasons.append(parsed)
            htmap.append("[]")
            lengths.append(0)
            continue
        segs, cnts, runs = parsed
        reasons.append(None)
        htmap.append(runs)
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
    """Values as float64 (what the legacy ``float(x)`` accepted); NaN where it fails (or null)."""
    if play_arrow.is_arrow(values):
        return values.to_numpy(zero_copy_only=False)
    try:
        out = np.array(values, dtype=np.float64)
        if out.shape == (len(values),):  # lists of equal length make a 2-d array: not numbers
            return out
    except (TypeError, ValueError, OverflowError):
        pass
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
    """``_as_str(values)``, without the copy when they are all strings already (or an Arrow column)."""
    if play_arrow.is_arrow(values):
        return values
    return values if types <= {str} and None not in values else _as_str(values)


def _bad_names(names, ok=safe_name) -> np.ndarray:
    """Per value: not a usable name by ``ok`` (checked once per distinct value); absent values are not (they
    have their own reason)."""
    codes, uniq = factorize(names)
    bad = np.fromiter((*(not ok(u) for u in uniq), False), dtype=bool, count=len(uniq) + 1)  # code -1: absent
    return bad[codes] if len(codes) else np.zeros(0, dtype=bool)


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
_TOO_LARGE = object()
_S_QUICK = S_MAX_BYTES // 4  # shorter values are within S_MAX_BYTES whatever their characters


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _s_row(raw, fast: bool = True):
    """One ``K_S`` as a tuple of ``FIELDS`` (``None`` where absent), ``None`` when it is not a JSON object,
    or ``_TOO_LARGE`` (not parsed) when it is over ``S_MAX_BYTES``."""
    if len(raw) > _S_QUICK and over_bytes(raw, S_MAX_BYTES):
        return _TOO_LARGE
    if fast and (type(raw) is not bytes or raw.isascii() or _utf8(raw)):  # msgspec skips members unchecked
        try:
            return _ASTUPLE(_S_DECODER.decode(raw))
        except Exception:  # noqa: BLE001, S110 - anything unusual: the ujson path decides
            pass
    d = _loads(raw)
    if type(d) is not dict:
        return None
    return tuple(d.get(f) for f in FIELDS)


_S_KINDS = bytes(play_arrow.NUMBER if f in NUMERIC_FIELDS else play_arrow.TEXT_OR_UINT if f == "region"
                 else play_arrow.TEXT for f in FIELDS)


def _fields(s_raw: Sequence, fast: bool = True) -> tuple[dict[str, list], np.ndarray, np.ndarray]:
    """``K_S`` fields as columns (``None`` where absent, missing, not an object or too large), and per play
    whether ``K_S`` is present but not a JSON object, and whether it is over ``S_MAX_BYTES``. From an Arrow
    column (``fast``), the C reader's columns (``play_arrow``: Arrow arrays, or lists where they cannot be)."""
    if fast and play_fast.arrow_values(s_raw):
        return play_arrow.s_fields(s_raw)
    rows = [_s_row(r, fast) if r is not None else _NO_FIELDS for r in s_raw]
    bad = np.fromiter((type(r) is not tuple for r in rows), dtype=bool, count=len(rows))
    big = np.zeros(len(rows), dtype=bool)
    if bad.any():
        big = np.fromiter((r is _TOO_LARGE for r in rows), dtype=bool, count=len(rows))
        bad &= ~big
        rows = [r if type(r) is tuple else _NO_FIELDS for r in rows]
    cols = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in FIELDS]
    return dict(zip(FIELDS, cols, strict=True)), bad, big


@dataclass
class Decoded:
    """A chunk of plays, validated: the valid plays' columns (in the given order) and the quarantined rows."""

    pos: np.ndarray               # position of each valid play in the input
    columns: dict[str, list | np.ndarray]  # key, vid, region, ipkey, flow, comprate, jcode, zz_uinfo, S fields
    quarantine: dict[str, list]   # key, reason, S, J, z1 (raw values)
    segtab: SegmentTable


def decode_columns(keys: Sequence[str], s_raw: Sequence, j_raw: Sequence, z1_raw: Sequence, fast: bool = True
                   ) -> Decoded:
    """Validate and decode plays (CONTRACT §5) into plain columns (lists, NumPy or Arrow arrays, no frames).
    ``K_S`` and ``K_z1`` as Arrow ``binary`` columns go to the C reader (``play_arrow``), lists to Python.

    The first failing check names a play's quarantine reason, in this order: vid, missing values, ``K_S`` size,
    ``K_S`` JSON, ``K_J`` (its size first), missing fields, text fields, numbers, ranges, region (kids: later).
    """
    n = len(keys := list(keys))
    if not (fast and play_fast.arrow_values(s_raw)):  # the list path
        s_raw, z1_raw = (v.to_pylist() if play_arrow.is_arrow(v) else v for v in (s_raw, z1_raw))
    vid = [k[:7] for k in keys]
    reason = np.full(n, None, dtype=object)

    def mark(mask: np.ndarray, why) -> None:
        free = mask & np.equal(reason, None)
        reason[free] = why if isinstance(why, str) else np.asarray(why, dtype=object)[free]

    mark(_bad_names(vid, safe_vid), "bad_vid")
    if (absent := play_arrow.none_mask(s_raw)) is not None:
        mark(absent, "missing_S")
    j_col = play_arrow.JValues(j_raw)
    if j_col.missing is not None:
        mark(j_col.missing, "missing_J")

    cols, not_object, too_large = _fields(s_raw, fast)
    mark(too_large, "too_large")
    mark(not_object, "invalid_json_S")

    codes, uniques = j_col.codes()
    segtab, j_reasons = build_segment_table(uniques)
    if any(r is not None for r in j_reasons):
        jr = np.asarray(j_reasons + [None], dtype=object)[codes]  # code -1 (missing) -> None
        mark(np.not_equal(jr, None), jr)

    for f in FIELDS:
        if (absent := play_arrow.none_mask(cols[f])) is not None:
            mark(absent, f"missing_field:{f}")
    types = {f: play_arrow.types_of(cols[f]) for f in TEXT_FIELDS}  # None: marked missing above
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
    quarantine = {"key": [keys[i] for i in bad], "reason": reason[bad].tolist(), "S": play_arrow.pick(s_raw, bad),
                  "J": j_col.pick(bad), "z1": play_arrow.pick(z1_raw, bad)}
    idx = np.flatnonzero(ok)
    everything = len(idx) == n

    pick = operator.itemgetter(*idx.tolist()) if 1 < len(idx) < n else None

    def take(values):
        if everything:
            return values
        if play_arrow.is_arrow(values):
            return values.take(pa.array(idx))
        return list(pick(values)) if pick is not None else [values[i] for i in idx]

    htmap = segtab.htmap
    jcode = codes[idx].astype(np.int64)
    columns = {"key": take(keys), "vid": take(vid), "region": take(region),
               "flow": nums["flow"][idx], "comprate": nums["comprate"][idx],
               "ipkey": take(_strs(cols["ip"], types["ip"])), "jcode": jcode,
               "Htmap": [htmap[c] for c in jcode.tolist()],
               "zz_uinfo": take(play_arrow.uinfo(z1_raw)) if play_arrow.is_arrow(z1_raw) else
               [None if z is None else _dumps_text(z) for z in take(list(z1_raw))]}
    for f, doc in TEXT_DOC_FIELDS.items():
        columns[doc] = take(cols[f])
    return Decoded(idx.astype(np.int64), columns, quarantine, segtab)


def _dumps_text(raw) -> str:
    """A ``K_z1`` value as its ``zz_uinfo``: JSON text of the value as text (bytes decoded, bad UTF-8 replaced)."""
    return dumps(raw.decode("utf-8", "replace") if isinstance(raw, bytes | bytearray) else str(raw))


SEG_SCHEMA = pa.schema([("vid", pa.string()), ("seg", pa.int64()), ("heat", pa.int64()), ("plays", pa.int64())])


def factorize(values: Sequence) -> tuple[np.ndarray, list]:
    """Per value an int64 code into the distinct values in order of first appearance (``None``: -1), as
    ``pandas.factorize`` gives them (equal values by ``==`` share a code). Arrow's hash table when the values
    are all text or all bytes; a dict otherwise (mixed types, strings that are not valid UTF-8)."""
    arr = values if play_arrow.is_arrow(values) else None
    if arr is None and set(map(type, values)) - {type(None)} in ({str}, {bytes}):  # Arrow would take "a" and b"a" as equal
        try:
            arr = pa.array(values, pa.string() if str in map(type, values) else pa.binary())
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError):  # lone surrogates
            arr = None
    if arr is not None:
        enc = arr.dictionary_encode()
        return (enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64, copy=False),
                enc.dictionary.to_pylist())
    index: dict = {}
    codes = np.fromiter((-1 if v is None else index.setdefault(v, len(index)) for v in values), dtype=np.int64,
                        count=len(values))
    return codes, list(index)


def segment_sums(vid: Sequence[str], jcode: np.ndarray, segtab: SegmentTable) -> pa.Table:
    """Per (vid, segment) ``heat`` (Σ count) and ``plays`` (number of K_J entries) of plays given by their
    vid and ``K_J`` code into ``segtab``, sorted by vid and segment (``SEG_SCHEMA``); exact int64 sums
    (NumPy, one pass over each distinct (vid, K_J) pair's segments)."""
    if not len(vid) or not len(segtab.segs):
        return SEG_SCHEMA.empty_table()
    fast = play_fast.segment_sums(vid, jcode, segtab) if play_fast.HAVE_FAST else None
    if fast is not None:
        return fast
    codes, names = factorize(vid)
    by_name = np.argsort(np.asarray(names, dtype=object), kind="stable")
    vids = [names[i] for i in by_name.tolist()]
    rank = np.empty(len(names), dtype=np.int64)
    rank[by_name] = np.arange(len(names))
    vcode = rank[codes]
    nj = len(segtab.lengths)
    pair, n = np.unique(vcode * nj + np.asarray(jcode, dtype=np.int64), return_counts=True)
    pj = pair % nj
    lens = segtab.lengths[pj]
    keep = lens > 0
    pair, n, pj, lens = pair[keep], n[keep], pj[keep], lens[keep]
    if not len(pair):
        return SEG_SCHEMA.empty_table()
    flat = np.repeat(segtab.offsets[pj] - (np.cumsum(lens) - lens), lens) + np.arange(int(lens.sum()))
    weight = np.repeat(n, lens)
    key = (np.repeat(pair // nj, lens) << 32) | segtab.segs[flat]  # segments are < 2**31
    order = np.argsort(key, kind="stable")
    key = key[order]
    first = np.concatenate(([0], np.flatnonzero(np.diff(key)) + 1))
    heat = np.add.reduceat((segtab.cnts[flat] * weight)[order], first)
    plays = np.add.reduceat(weight[order], first)
    ukey = key[first]
    return pa.table([pa.array(vids, pa.string()).take(pa.array(ukey >> 32)), pa.array(ukey & 0xFFFFFFFF),
                     pa.array(heat.astype(np.int64)), pa.array(plays.astype(np.int64))], schema=SEG_SCHEMA)
