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
    frames. ``Mtraffic`` restarts from the day's traffic when the day opens a new calendar month."""
    if through is not None and day <= through:
        raise ValueError(f"fold: day {day} is not after the state's latest day {through}")
    out = {k: _add(k, state[k], contribution[k]) for k in TABLES}
    traffic = contribution["uid"][["uid", "Traffic"]].rename(columns={"Traffic": "Mtraffic"})
    same_month = through is not None and through[:6] == day[:6]
    out[MONTH] = _add(MONTH, state[MONTH] if same_month else _empty(MONTH), traffic)
    return out


def equal_states(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> list[str]:
    """The kinds whose frames differ (exactly: same keys, same values, bit for bit)."""
    bad = []
    for k in STATE_KINDS:
        x, y = a[k].reset_index(drop=True), b[k].reset_index(drop=True)
        if list(x.columns) != list(y.columns) or len(x) != len(y) or not x.equals(y):
            bad.append(k)
    return bad


def month_traffic(state: dict[str, pd.DataFrame]) -> dict[str, float]:
    """``{uid: Mtraffic}`` of the state's month."""
    m = state[MONTH]
    return dict(zip(m["uid"].tolist(), m["Mtraffic"].tolist(), strict=True))


def restrict(state: dict[str, pd.DataFrame], vids=None, uids=None) -> dict[str, pd.DataFrame]:
    """The state's rows of ``vids`` / ``uids`` only (``None`` = all)."""
    out = dict(state)
    if vids is not None:
        vset = set(vids)
        for k in ("vid", "vid_region", "vid_seg"):
            out[k] = state[k][state[k]["vid"].isin(vset)]
    if uids is not None:
        uset = set(uids)
        for k in ("uid", "uid_region"):
            out[k] = state[k][state[k]["uid"].isin(uset)]
    return out


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


def _row_hashes(df: pd.DataFrame, cols: list[str]):
    import numpy as np

    if not len(df):
        return np.zeros(0, dtype=np.uint64)
    return pd.util.hash_pandas_object(df[cols], index=False).to_numpy(dtype=np.uint64)


def _sum_by(keys: pd.Series, hashes) -> pd.Series:
    """Per key, the sum (mod 2**64) of its rows' hashes: independent of row order."""
    import numpy as np

    if not len(keys):
        return pd.Series([], dtype=np.uint64)
    return pd.Series(hashes, index=keys.to_numpy()).groupby(level=0, sort=False).sum()


def key_hashes(state: dict[str, pd.DataFrame], vids=None, uids=None) -> dict[tuple[str, str], int]:
    """A 64-bit content hash per stat document of ``state`` (``(kind, id)`` -> hash, ``kind`` ``vid`` or
    ``uid``), from the state's rows: the documents are a function of exactly these rows (and, for a uid,
    its ``Mtraffic``), so equal hashes mean equal documents. Vectorised: no document is built."""
    import numpy as np

    t = restrict(state, vids, uids)
    out: dict[tuple[str, str], int] = {}
    mix = np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        for kind, parts in (("vid", ("vid", "vid_region", "vid_seg")), ("uid", ("uid", "uid_region"))):
            base = t[kind]
            if not len(base):
                continue
            total = pd.Series(_row_hashes(base, _columns(kind)), index=base[kind].to_numpy())
            for i, part in enumerate(parts[1:], start=1):
                df = t[part]
                h = _sum_by(df[kind], _row_hashes(df, _columns(part)) * (mix * np.uint64(i) + np.uint64(1)))
                total = total.add(h.reindex(total.index, fill_value=np.uint64(0)).astype(np.uint64))
            if kind == "uid":
                m = state[MONTH].set_index("uid")["Mtraffic"].reindex(total.index, fill_value=0.0)
                total = total ^ pd.util.hash_array(m.to_numpy(dtype="float64"))
            vals = total.to_numpy(dtype=np.uint64).view(np.int64)
            out.update(((kind, k), int(v)) for k, v in zip(total.index.tolist(), vals.tolist(), strict=True))
    return out
