"""Running totals (the ``<uid>_stat`` documents) as a fold of the days' contributions, in date order.

``fold(state, contribution)`` adds one day: per key, ``total = total + contribution`` (one IEEE addition
per key and day; ``PlayID`` takes the max). Because every step is that same element-wise operation, a
state rebuilt from any earlier state by re-folding the later days is bit-identical to the state one
in-order run leaves, whatever order the days were first run in. ``Mtraffic`` is folded alongside: the
traffic of the calendar month of the state's latest day.

Pure: frames in, frames out; no files, no Airflow.
"""

from __future__ import annotations

import pandas as pd

# kind -> (key columns, summed columns); vid also carries uid (first) and PlayID (max)
TABLES: dict[str, tuple[list[str], list[str]]] = {
    "vid": (["vid"], ["Traffic", "EngageSum", "Load", "Play", "IP"]),
    "vid_region": (["vid", "region"], ["ClickNum", "Traffic", "EngageSum", "Load"]),
    "vid_seg": (["vid", "seg"], ["heat", "plays"]),
    "uid": (["uid"], ["Traffic", "EngageSum", "Load", "Play", "IP"]),
    "uid_region": (["uid", "region"], ["ClickNum", "Traffic", "EngageSum"]),
}
MONTH = "month"  # uid, Mtraffic: the month-to-date traffic of the state's month
STATE_KINDS = (*TABLES, MONTH)
_FLOATS = {"Traffic", "EngageSum"}


def _columns(kind: str) -> list[str]:
    if kind == MONTH:
        return ["uid", "Mtraffic"]
    keys, sums = TABLES[kind]
    return [*keys, *(["uid"] if kind == "vid" else []), *sums, *(["PlayID"] if kind == "vid" else [])]


def _keys(kind: str) -> list[str]:
    return ["uid"] if kind == MONTH else TABLES[kind][0]


def _empty(kind: str) -> pd.DataFrame:
    cols = {}
    for c in _columns(kind):
        if c in ("vid", "uid", "region"):
            cols[c] = pd.Series([], dtype=object)
        elif c in _FLOATS or c == "Mtraffic":
            cols[c] = pd.Series([], dtype="float64")
        else:
            cols[c] = pd.Series([], dtype="int64")
    return pd.DataFrame(cols)


def empty_state() -> dict[str, pd.DataFrame]:
    """The state before any day."""
    return {k: _empty(k) for k in STATE_KINDS}


def _add(kind: str, total: pd.DataFrame, day: pd.DataFrame) -> pd.DataFrame:
    """``total + day`` per key (keys sorted): one addition per key present in both."""
    cols = _columns(kind)
    day = day[cols] if len(day) else _empty(kind)
    if not len(total):
        out = day.sort_values(_keys(kind), kind="stable")
        return _typed(kind, out.reset_index(drop=True))
    if not len(day):
        return total
    keys = _keys(kind)
    both = pd.concat([total[cols], day], ignore_index=True)
    g = both.groupby(keys, sort=True)
    sums = [c for c in cols if c not in keys and c not in ("uid", "PlayID")]
    out = g[sums].sum()
    if kind == "vid":
        out.insert(0, "uid", g["uid"].first())
        out["PlayID"] = g["PlayID"].max()
    return _typed(kind, out.reset_index()[cols])


def add_kind(kind: str, total: pd.DataFrame, day: pd.DataFrame) -> pd.DataFrame:
    """``fold``'s step for one kind: ``total + day`` per key. Keys are independent, so the frames may be any
    key range of the state and the day (the same range of both)."""
    return _add(kind, total, day)


def _typed(kind: str, df: pd.DataFrame) -> pd.DataFrame:
    for c in _columns(kind):
        if c in _FLOATS or c == "Mtraffic":
            df[c] = df[c].astype("float64")
        elif c not in ("vid", "uid", "region"):
            df[c] = df[c].astype("int64")
    return df


def fold(state: dict[str, pd.DataFrame], through: str | None, contribution: dict[str, pd.DataFrame],
         day: str) -> dict[str, pd.DataFrame]:
    """The state after adding ``day`` (later than ``through``, the state's latest day, or None) to it.

    ``contribution`` holds the day's ``vid``, ``vid_region``, ``vid_seg``, ``uid`` and ``uid_region``
    frames; a kind missing from it and from ``state`` (``vid_seg``, which the caller may fold range by range
    with ``add_kind``) is left out. ``Mtraffic`` restarts from the day's traffic when the day opens a new
    calendar month."""
    if through is not None and day <= through:
        raise ValueError(f"fold: day {day} is not after the state's latest day {through}")
    out = {k: _add(k, state[k], contribution[k]) for k in TABLES if k in contribution or k in state}
    traffic = contribution["uid"][["uid", "Traffic"]].rename(columns={"Traffic": "Mtraffic"})
    same_month = through is not None and through[:6] == day[:6]
    out[MONTH] = _add(MONTH, state[MONTH] if same_month else _empty(MONTH), traffic)
    return out


def equal_frames(x: pd.DataFrame, y: pd.DataFrame) -> bool:
    """Exactly equal: same columns, keys and values, bit for bit (the index aside)."""
    x, y = x.reset_index(drop=True), y.reset_index(drop=True)
    if list(x.columns) != list(y.columns) or len(x) != len(y):
        return False
    return not len(x) or x.equals(y)  # no rows: equal whatever the (empty) columns' types


def equal_states(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame], kinds=STATE_KINDS) -> list[str]:
    """The kinds (of ``kinds``) whose frames differ (exactly: same keys, same values, bit for bit)."""
    return [k for k in kinds if not equal_frames(a[k], b[k])]


def month_traffic(state: dict[str, pd.DataFrame]) -> dict[str, float]:
    """``{uid: Mtraffic}`` of the state's month."""
    m = state[MONTH]
    return dict(zip(m["uid"].tolist(), m["Mtraffic"].tolist(), strict=True))


def kept_snapshots(days: list[str]) -> set[str]:
    """Which states to keep on disk, given the folded days: the last day of each calendar month (the
    checkpoints an earlier day's re-run starts from), the latest day and the one before it (so that a
    re-run of the latest day, and its verification, start from the state just before it)."""
    ordered = sorted(days)
    keep = set(ordered[-2:])
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a[:6] != b[:6]:
            keep.add(a)
    return keep


def _wanted(keys, want) -> list:
    """``want`` (``None``: every key) as a sorted list of the keys present."""
    return keys.tolist() if want is None else sorted(set(want) & set(keys.tolist()))


def key_hashes(state: dict[str, pd.DataFrame], vids=None, uids=None) -> dict[tuple[str, str], int]:
    """A 64-bit content hash per stat document of ``state`` (``(kind, id)`` -> hash, ``kind`` ``vid`` or
    ``uid``), from the state's rows: the documents are a function of exactly these rows (and, for a uid,
    its ``Mtraffic``), so equal hashes mean equal documents. Vectorised: no document is built. Per
    document, its rows' hashes are summed (mod 2**64); the state's frames are sorted by key."""
    import numpy as np

    out: dict[tuple[str, str], int] = {}
    with np.errstate(over="ignore"):
        for kind, parts, want in (("vid", ("vid", "vid_region", "vid_seg"), vids),
                                  ("uid", ("uid", "uid_region"), uids)):
            keys = state[kind][kind].to_numpy(dtype=object)
            wanted = _wanted(keys, want)
            if not wanted:
                continue
            total = np.zeros(len(wanted), dtype=np.uint64)
            for i, part in enumerate(parts):
                df = state[part]
                left, right = _spans(df[kind].to_numpy(dtype=object), wanted)
                rows, group = _rows(left, right)
                cols = [c for c in _columns(part) if c != kind]
                h = pd.util.hash_pandas_object(df[cols].iloc[rows], index=False).to_numpy(dtype=np.uint64)
                h = h * np.uint64(2 * i + 1) + np.uint64(i)
                np.add.at(total, group, h)
            if kind == "uid":
                mt = month_traffic(state)
                total ^= pd.util.hash_array(np.asarray([mt.get(u, 0.0) for u in wanted], dtype="float64"))
            out.update(((kind, k), int(v)) for k, v in zip(wanted, total.view(np.int64).tolist(), strict=True))
    return out


# ---- stat documents, built from the state's sorted frames ----------------------------------------------

def _spans(keys, wanted):
    """Row ranges ``[left, right)`` of each of ``wanted`` (sorted, unique) in the sorted ``keys``."""
    import numpy as np

    w = np.asarray(wanted, dtype=object)
    return np.searchsorted(keys, w, "left"), np.searchsorted(keys, w, "right")


def _rows(left, right):
    """The row numbers of the ranges, concatenated, and the range number of each."""
    import numpy as np

    lens = right - left
    n = int(lens.sum())
    group = np.repeat(np.arange(len(lens)), lens)
    starts = np.repeat(left - (np.cumsum(lens) - lens), lens)
    return starts + np.arange(n), group


def _runs_json(group, seg, val, groups: int) -> list[str]:
    """Per group, ``dumps(map_runs({seg: val}))`` of its rows (sorted by seg): adjacent segments with
    equal values merge into one ``[2s-2, 2s', value]`` run. The runs' text is formatted by Arrow in one
    pass ("[a,b,v]," each, back to back in one buffer) and cut per group at the string offsets."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(seg):
        return ["[]"] * groups
    new = np.ones(len(seg), dtype=bool)
    new[1:] = (group[1:] != group[:-1]) | (seg[1:] != seg[:-1] + 1) | (val[1:] != val[:-1])
    first = np.flatnonzero(new)
    last = np.append(first[1:], len(seg)) - 1
    num = [pc.cast(pa.array(x), pa.string()) for x in (2 * seg[first] - 2, 2 * seg[last], val[first])]
    runs = pc.binary_join_element_wise("[", num[0], ",", num[1], ",", num[2], "],", "")
    runs = runs.combine_chunks() if isinstance(runs, pa.ChunkedArray) else runs
    offsets = np.frombuffer(runs.buffers()[1], dtype=np.int32, count=len(runs) + 1, offset=runs.offset * 4)
    text = runs.buffers()[2].to_pybytes().decode("ascii")
    base = int(offsets[0])
    n = np.bincount(group[first], minlength=groups)
    hi = np.cumsum(n)
    lo = hi - n
    starts = (offsets[lo] - base).tolist()
    ends = (offsets[hi] - base - 1).tolist()
    return ["[" + text[a:b] + "]" if b > a else "[]" for a, b in zip(starts, ends, strict=True)]


def _geo_by(frame: pd.DataFrame, key: str, wanted, load: bool) -> list[dict]:
    """Per wanted key, ``{region: {ClickNum, Traffic, EngageSum, Load}}`` (Load 0 unless ``load``)."""
    left, right = _spans(frame[key].to_numpy(dtype=object), wanted)
    rows, group = _rows(left, right)
    out: list[dict] = [{} for _ in range(len(wanted))]
    sub = frame.iloc[rows]
    loads = sub["Load"].tolist() if load else [0] * len(sub)
    for g, r, c, t, e, ld in zip(group.tolist(), sub["region"].tolist(), sub["ClickNum"].tolist(),
                                 sub["Traffic"].tolist(), sub["EngageSum"].tolist(), loads, strict=True):
        out[g][r] = {"ClickNum": c, "Traffic": t, "EngageSum": e, "Load": ld}
    return out


def _ratio(num, den) -> float:
    return float(num) / den if den else 0.0


def vid_stat_docs(state: dict[str, pd.DataFrame], vids=None) -> list[tuple[str, str, dict]]:
    """``(uid, vid, doc)``: the ``<uid>_stat`` document with ``_id`` = vid, for ``vids`` (``None``: all)."""
    import numpy as np

    v = state["vid"]
    keys = v["vid"].to_numpy(dtype=object)
    wanted = sorted(set(vids) & set(keys.tolist())) if vids is not None else keys.tolist()
    if not wanted:
        return []
    at = np.searchsorted(keys, np.asarray(wanted, dtype=object))
    base = v.iloc[at]
    geo = _geo_by(state["vid_region"], "vid", wanted, load=True)
    s = state["vid_seg"]
    left, right = _spans(s["vid"].to_numpy(dtype=object), wanted)
    rows, group = _rows(left, right)
    seg = s["seg"].to_numpy(dtype=np.int64)[rows]
    heat = s["heat"].to_numpy(dtype=np.int64)[rows]
    plays = s["plays"].to_numpy(dtype=np.int64)[rows]
    htmap = _runs_json(group, seg, heat, len(wanted))
    ptmap = _runs_json(group, seg, plays, len(wanted))
    seg_s, heat_l, plays_l = [str(x) for x in seg.tolist()], heat.tolist(), plays.tolist()
    bounds = np.concatenate([[0], np.cumsum(right - left)]).tolist()
    out = []
    for i, (vid, uid, tr, e, load, play, ip, pid) in enumerate(zip(
            wanted, *(base[c].tolist() for c in ("uid", "Traffic", "EngageSum", "Load", "Play", "IP", "PlayID")),
            strict=True)):
        a, b = bounds[i], bounds[i + 1]
        doc = {"Traffic": tr, "EngageSum": e, "Load": load, "Play": play, "IP": ip, "Geo": geo[i]}
        if b > a:  # the legacy job's $inc never created them for a video without segments
            doc["HeatMapSum"] = dict(zip(seg_s[a:b], heat_l[a:b], strict=True))
            doc["PlayMapSum"] = dict(zip(seg_s[a:b], plays_l[a:b], strict=True))
        doc.update({"PlayID": pid, "Click": _ratio(play, load), "Engage": _ratio(e, play), "Htmap": htmap[i],
                    "Ptmap": ptmap[i]})
        out.append((uid, vid, doc))
    return out


def uid_stat_docs(state: dict[str, pd.DataFrame], uids=None) -> list[tuple[str, dict]]:
    """``(uid, doc)``: the ``<uid>_stat`` document with ``_id`` = uid, for ``uids`` (``None``: all)."""
    import numpy as np

    u = state["uid"]
    keys = u["uid"].to_numpy(dtype=object)
    wanted = sorted(set(uids) & set(keys.tolist())) if uids is not None else keys.tolist()
    if not wanted:
        return []
    base = u.iloc[np.searchsorted(keys, np.asarray(wanted, dtype=object))]
    geo = _geo_by(state["uid_region"], "uid", wanted, load=False)
    mt = month_traffic(state)
    return [(uid, {"Traffic": tr, "EngageSum": e, "Load": load, "Play": play, "IP": ip, "Geo": geo[i],
                   "Mtraffic": float(mt.get(uid, 0.0))})
            for i, (uid, tr, e, load, play, ip) in enumerate(zip(
                wanted, *(base[c].tolist() for c in ("Traffic", "EngageSum", "Load", "Play", "IP")), strict=True))]
