"""What the dashboard reads from the data root: per day, only the files and columns a page needs.

* history (one small JSON per source per day): ``online_time/D/totals.json``, ``plays/D/ingest.json``,
  ``reports/D.json``;
* one day: the ``online_seconds`` column of ``online_time/D/online_time.parquet``; ``vid, kid,
  ClickNum, Traffic`` of ``plays/D/contrib/vid.parquet``; one video's rows of ``plays/D/segments.parquet``.

Everything read is cached by (path, modification time, size), so a re-run of a day shows at once and an
unchanged day is never read twice. The numbers are computed by ``video_analytics.dashboard``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from include.storage import DataRoot
from video_analytics import conventions as conv
from video_analytics import dashboard as core

_CACHE: OrderedDict[tuple, Any] = OrderedDict()
_CACHE_MAX = 512
_LOCK = threading.Lock()


def _stamp(root: DataRoot, rel: str) -> tuple | None:
    """(mtime, size) of a file, ``None`` when it does not exist."""
    try:
        info = root.fs.info(root.path(rel))
    except FileNotFoundError:
        return None
    return (str(info.get("mtime") or info.get("LastModified") or info.get("last_modified")), info.get("size"))


def _cached(root: DataRoot, rel: str, what: tuple, load):
    """``load()`` of ``rel`` once per version of the file; ``None`` when the file does not exist."""
    stamp = _stamp(root, rel)
    if stamp is None:
        return None
    key = (root.url, rel, stamp, what)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    value = load()
    with _LOCK:
        _CACHE[key] = value
        while len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)
    return value


def _json(root: DataRoot, rel: str) -> dict | None:
    return _cached(root, rel, ("json",), lambda: root.read_json(rel))


def days(root: DataRoot) -> list[str]:
    """Every day (``YYYY-MM-DD``) with an online-time total, a plays ingest or a verify report, ascending."""
    found: set[str] = set()
    for p in root.glob(conv.REPORTS_DIR, "*.json"):
        found.add(p.rsplit("/", 1)[-1][:-5])
    for p in root.glob("online_time", "*", "totals.json"):
        found.add(p.rsplit("/", 2)[-2])
    for p in root.glob("plays", "*", "ingest.json"):
        d = p.rsplit("/", 2)[-2]
        if len(d) == 8 and d.isdigit():
            found.add(f"{d[:4]}-{d[4:6]}-{d[6:]}")
    out = []
    for d in found:
        try:
            out.append(conv.as_date(d).isoformat())
        except ValueError:
            continue
    return sorted(out)


def day_summary(root: DataRoot, day: str) -> dict[str, Any]:
    d = conv.as_date(day)
    return core.day_summary(
        d.isoformat(),
        _json(root, conv.online_time_path(d, "totals.json")),
        _json(root, conv.plays_path(conv.ymd(d), "ingest.json")),
        _json(root, conv.report_path(d)),
    )


def history(root: DataRoot, last: int = 30) -> list[dict[str, Any]]:
    """The summaries of the ``last`` most recent days with any result, oldest first."""
    return [day_summary(root, d) for d in days(root)[-last:]]


def report(root: DataRoot, day: str) -> dict | None:
    return _json(root, conv.report_path(conv.as_date(day)))


def online_seconds(root: DataRoot, day: str):
    """The ``online_seconds`` of every user of the window ending ``day`` (NumPy array), or ``None``."""
    rel = conv.online_time_path(conv.as_date(day), "online_time.parquet")
    return _cached(root, rel, ("online_seconds",),
                   lambda: root.read_table(rel, columns=["online_seconds"]).column("online_seconds").to_numpy())


_VID_COLUMNS = ["vid", "kid", "ClickNum", "Traffic"]


def top_videos(root: DataRoot, day: str, n: int = 10) -> dict[str, list[dict]] | None:
    """The day's video count and its ``n`` top videos by plays and by traffic (``core.top_n``'s order:
    value descending, a missing value as 0, ties by vid), sorted by Arrow: no row becomes a Python object
    but the ``n`` kept, whatever the number of videos."""
    rel = conv.plays_path(conv.ymd(conv.as_date(day)), "contrib", "vid.parquet")

    def load():
        import pyarrow as pa
        import pyarrow.compute as pc

        t = root.read_table(rel, columns=_VID_COLUMNS)

        def top(key: str) -> list[dict]:
            keys = pa.table({"v": pc.fill_null(t[key].cast(pa.float64()), 0.0), "vid": t["vid"].cast(pa.string())})
            idx = pc.sort_indices(keys, sort_keys=[("v", "descending"), ("vid", "ascending")])[:n]
            return t.take(idx).to_pylist()

        return {"count": t.num_rows, "by_plays": top("ClickNum"), "by_traffic": top("Traffic")}

    return _cached(root, rel, ("top", n), load)


def heat_map(root: DataRoot, day: str, vid: str) -> list[dict[str, int]] | None:
    """One video's merged heat runs over its timeline on ``day`` (``plays/D/segments.parquet``)."""
    rel = conv.plays_path(conv.ymd(conv.as_date(day)), "segments.parquet")

    def load():
        t = root.read_table(rel, columns=["seg", "heat", "plays"], filters=[("vid", "=", vid)])
        return core.heat_runs(zip(t.column("seg").to_pylist(), t.column("heat").to_pylist(),
                                  t.column("plays").to_pylist(), strict=True))

    return _cached(root, rel, ("heat", vid), load)


def weekly_summary(root: DataRoot, end: str) -> dict[str, Any]:
    """The 7 days ending ``end`` (``video_analytics.dashboard.week_summary``), written to
    ``summaries/weekly/<end>.json``."""
    import datetime as dt

    stop = conv.as_date(end)
    week = {(stop - dt.timedelta(days=i)).isoformat() for i in range(7)}
    rows = [day_summary(root, d) for d in days(root) if d in week]
    summary = core.week_summary(stop.isoformat(), rows)
    summary["path"] = root.uri(f"summaries/weekly/{stop.isoformat()}.json")
    root.write_json(summary, f"summaries/weekly/{stop.isoformat()}.json")
    return summary
