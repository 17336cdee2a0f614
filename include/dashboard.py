"""What the dashboard reads from the data root: per day, only the files and columns a page needs.

* history (one small JSON per source per day): ``online_time/D/totals.json``, ``plays/D/ingest.json``,
  ``reports/D.json``; the windows' ``online_time/D/w<W>/totals.json`` or ``skipped.json``,
  ``plays/D/cleanup.json`` (late plays) and ``missing/D.json`` (days accepted as missing), each found by
  one listing;
* one day: the ``online_seconds`` column of ``online_time/D/online_time.parquet``; ``vid, kid,
  ClickNum, Traffic`` of ``plays/D/contrib/vid.parquet``; one video's rows of ``plays/D/segments.parquet``;
  the ``reason`` column of ``online_time/D/rejects.parquet`` and ``plays/D/quarantine.parquet``;
* the category names ``catalog/categories.json`` (``capture_categories``, task of the ``maintenance`` DAG).

What is read is cached by (path, version: ETag, or modification time and size), so a re-run of a day shows
at once and an unchanged day is never read twice. The cache keeps small values, what a page draws (a heat
strip's bucketed marks, a histogram's bins), never a video's segment rows, and holds at most
``CACHE_MAX_ITEMS`` items in all. The numbers are computed by ``video_analytics.dashboard``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from include.storage import DataRoot
from video_analytics import conventions as conv
from video_analytics import dashboard as core

_CACHE: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()
_CACHE_MAX = 512  # entries
CACHE_MAX_ITEMS = 1_000_000  # list items and array elements held by every entry together
_LOCK = threading.Lock()


def _stamp(root: DataRoot, rel: str) -> tuple | None:
    """The file's version (``DataRoot.version``: ETag on an object store), ``None`` when it does not exist."""
    return root.version(rel)


def _items(value: Any) -> int:
    """What a cached value holds: its list items or array elements (nested lists and dicts counted)."""
    if isinstance(value, dict):
        return 1 + sum(_items(v) for v in value.values())
    if isinstance(value, list | tuple):
        return 1 + sum(_items(v) if isinstance(v, list | tuple | dict) else 1 for v in value)
    return int(getattr(value, "size", 1))


def _cached(root: DataRoot, rel: str, what: tuple, load):
    """``load()`` of ``rel`` once per version of the file; ``None`` when the file does not exist. The cache
    holds at most ``_CACHE_MAX`` entries and ``CACHE_MAX_ITEMS`` items (``_items``), least recently used
    going first; a value over a quarter of that is returned, not kept."""
    stamp = _stamp(root, rel)
    if stamp is None:
        return None
    key = (root.url, rel, stamp, what)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key][0]
    value = load()
    size = _items(value)
    if size > CACHE_MAX_ITEMS // 4:
        return value
    with _LOCK:
        _CACHE[key] = (value, size)
        total = cache_items()
        while len(_CACHE) > _CACHE_MAX or total > CACHE_MAX_ITEMS:
            total -= _CACHE.popitem(last=False)[1][1]
    return value


def cache_items() -> int:
    """The items the cache holds now (``_items`` of every entry)."""
    return sum(size for _, size in _CACHE.values())


def _json(root: DataRoot, rel: str) -> dict | None:
    return _cached(root, rel, ("json",), lambda: root.read_json(rel))


def _record(root: DataRoot, rel: str) -> Any:
    """``_json`` of a record the overview lists; a file that is not JSON is ``{"unreadable": why}`` (one
    line naming it), so one bad file shows as such and never fails the page."""
    from include.object_store import StoreError

    try:
        return _json(root, rel)
    except ValueError as exc:
        return {"unreadable": f"{root.uri(rel)} is not JSON ({type(exc).__name__})"}
    except StoreError as exc:  # an object store's unreadable object: its one line names it and the connection
        return {"unreadable": (str(exc).splitlines() or [""])[0]}


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


def online_histogram(root: DataRoot, day: str, bins: int = 20) -> list[dict[str, float]] | None:
    """The histogram (``core.histogram``, minutes) of the window's online time per user ending ``day``;
    cached as its bins, never as the users' column."""
    rel = conv.online_time_path(conv.as_date(day), "online_time.parquet")
    return _cached(root, rel, ("histogram", bins), lambda: core.histogram(
        root.read_table(rel, columns=["online_seconds"]).column("online_seconds").to_numpy() / 60, bins=bins))


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


def _segments(root: DataRoot, day: str, vid: str) -> list[tuple[int, int, int]] | None:
    """One video's ``(seg, heat, plays)`` rows on ``day`` (``plays/D/segments.parquet``: HeatMapSum and
    PlayMapSum), read each time: the cache keeps only what is drawn from them (``heat_view``)."""
    rel = conv.plays_path(conv.ymd(conv.as_date(day)), "segments.parquet")
    if _stamp(root, rel) is None:
        return None
    t = root.read_table(rel, columns=["seg", "heat", "plays"], filters=[("vid", "=", vid)])
    return list(zip(t.column("seg").to_pylist(), t.column("heat").to_pylist(), t.column("plays").to_pylist(),
                    strict=True))


def heat_map(root: DataRoot, day: str, vid: str) -> list[dict[str, int]] | None:
    """One video's merged heat runs over its timeline on ``day`` (every run: not cached)."""
    rows = _segments(root, day, vid)
    return None if rows is None else core.heat_runs(rows)


def heat_view(root: DataRoot, day: str, vid: str, width: int) -> dict[str, Any] | None:
    """What a heat strip ``width`` marks wide draws of one video on ``day``: ``{"runs"}`` (at most
    ``width``, ``core.bucket_runs``), ``count`` (its merged runs) and ``step`` (seconds per bucket, ``None``
    when not bucketed). Cached per version of the file: at most ``width`` runs per video, never the rows."""
    rel = conv.plays_path(conv.ymd(conv.as_date(day)), "segments.parquet")

    def load():
        runs = core.heat_runs(_segments(root, day, vid) or [])
        marks, step = core.bucket_runs(runs, width)
        return {"runs": marks, "count": len(runs), "step": step}

    return _cached(root, rel, ("heat", vid, width), load)


def retention_curve(root: DataRoot, day: str, vid: str) -> list[dict[str, float]]:
    """The share of the video's plays on ``day`` (its ``ClickNum``) that reached each second, from its
    PlayMapSum (``core.retention_curve``); ``[]`` when either is unknown."""
    rel = conv.plays_path(conv.ymd(conv.as_date(day)), "contrib", "vid.parquet")
    plays = _cached(root, rel, ("clicknum", vid), lambda: root.read_table(
        rel, columns=["ClickNum"], filters=[("vid", "=", vid)]).column("ClickNum").to_pylist())
    if not plays:
        return []
    rows = _segments(root, day, vid)
    return core.retention_curve(((s, p) for s, _, p in rows or []), plays[0])


def _reason_counts(root: DataRoot, rel: str) -> dict[str, int] | None:
    """``reason -> rows`` of a rejects or quarantine file (its ``reason`` column only)."""
    def load():
        t = root.read_table(rel, columns=["reason"]).group_by("reason").aggregate([("reason", "count")])
        return dict(zip(t.column("reason").to_pylist(), t.column("reason_count").to_pylist(), strict=True))

    return _cached(root, rel, ("reasons",), load)


def reasons(root: DataRoot, day: str) -> dict[str, Any]:
    """The day's rejected log rows and quarantined plays by reason (``core.reason_counts``). Quarantine
    comes from ``quarantine.parquet``, or from ``ingest.json`` once prune removed it; ``None``: unknown."""
    d = conv.as_date(day)
    totals = _json(root, conv.online_time_path(d, "totals.json")) or {}
    ingest = _json(root, conv.plays_path(conv.ymd(d), "ingest.json")) or {}
    rej = _reason_counts(root, conv.online_time_path(d, "rejects.parquet"))
    quar = _reason_counts(root, conv.plays_path(conv.ymd(d), "quarantine.parquet"))
    source = "quarantine.parquet"
    if quar is None and ingest.get("quarantine_reasons") is not None:
        quar, source = ingest["quarantine_reasons"], "ingest.json"
    return {"rejects": None if rej is None else core.reason_counts(rej, totals.get("rows_in")),
            "quarantine": None if quar is None else core.reason_counts(quar, ingest.get("unique")),
            "quarantine_source": source}


CATEGORIES = "catalog/categories.json"
MAX_CATEGORIES = 10_000
MAX_NAME = 120


def category_names(root: DataRoot) -> dict[str, str]:
    """``kid -> name`` from ``catalog/categories.json`` (``capture_categories``); ``{}`` when not captured."""
    got = _json(root, CATEGORIES) or {}
    names = got.get("names")
    return {str(k): str(v) for k, v in names.items()} if isinstance(names, dict) else {}


def capture_categories(root: DataRoot, mysql_hook, column: str = "name") -> dict[str, Any]:
    """The catalog's category names (``vsort``: ``kid`` and the column ``column``, when it has one) into
    ``catalog/categories.json`` for the dashboard. The column is picked from ``SELECT *``'s result by name,
    never put in the SQL; at most ``MAX_CATEGORIES`` rows, names cut at ``MAX_NAME`` characters."""
    conn = mysql_hook.get_conn()
    try:
        cur = conn.cursor()
        cur.execute("SELECT * FROM vsort ORDER BY id")
        cols = [c[0].decode() if isinstance(c[0], bytes) else str(c[0]) for c in cur.description or []]
        rows = cur.fetchmany(MAX_CATEGORIES + 1)
    finally:
        conn.close()
    names: dict[str, str] = {}
    if "kid" in cols and column in cols:
        k, n = cols.index("kid"), cols.index(column)
        for r in rows[:MAX_CATEGORIES]:
            kid, name = r[k], r[n]
            if kid is None or name is None or str(name).strip() == "":
                continue
            kid = kid.decode() if isinstance(kid, bytes) else str(kid)
            name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
            names.setdefault(kid, name.strip()[:MAX_NAME])
    out = {"column": column, "column_found": column in cols, "rows": min(len(rows), MAX_CATEGORIES),
           "truncated": len(rows) > MAX_CATEGORIES, "names": names}
    root.write_json(out, CATEGORIES)
    return {k: v for k, v in out.items() if k != "names"} | {"named": len(names), "path": root.uri(CATEGORIES)}


def timeline(root: DataRoot, last: int, today) -> list[dict[str, Any]]:
    """The overview's rows: every calendar day of ``core.calendar`` (oldest first), a day without
    results as ``{"day", "missing": True}`` with every number ``None``; each with its ``windows``
    (``windows``), ``accepted_missing`` (its log accepted as lost) and ``late`` plays (``late_plays``)."""
    found = days(root)
    have = set(found)
    cal = core.calendar(found, today, last)
    wins, lost, late = windows(root, cal), accepted_missing(root, cal), late_days(root)
    out = []
    for d in cal:
        row = day_summary(root, d) if d in have else core.day_summary(d, None, None, None)
        out.append({**row, "missing": d not in have, "windows": wins[d], "accepted_missing": lost.get(d),
                    "late": late_plays(root, d) if d in late else None})
    return out


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


def last_complete(root: DataRoot, now) -> dict[str, Any] | None:
    """The newest day whose report passed and the hours since its end (``core.last_complete``)."""
    for d in reversed(days(root)):
        if (report(root, d) or {}).get("ok") is True:
            return core.last_complete([{"day": d, "verify": "passed"}], now)
    return None


def categories_task(context) -> dict[str, Any]:
    """Task ``maintenance.capture_categories``: ``capture_categories`` with the ``video_mysql`` connection
    and the Variable ``category_name_column`` (default ``name``)."""
    from include.settings import data_root, mysql_hook, variable

    return capture_categories(data_root(), mysql_hook(), variable("category_name_column", "name"))


WINDOWS = tuple(core.WINDOW_NAMES)


def _found(root: DataRoot, *pattern: str) -> set[str]:
    """The data root's files matching ``pattern`` (one listing), relative to the root."""
    base = root.path().rstrip("/") + "/"
    return {p[len(base):] if p.startswith(base) else p for p in root.glob(*pattern)}


def windows(root: DataRoot, days_: list[str]) -> dict[str, dict[int, dict[str, Any]]]:
    """``{day: {W: core.window_point}}`` for each of ``days_`` and window of ``WINDOWS``, from
    ``online_time/D/w<W>/totals.json`` or ``skipped.json`` (a window not computed: a gap, as is a missing
    folder). One listing, then only the files that exist are read."""
    have = _found(root, "online_time", "*", "w*", "*.json")
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for d in days_:
        out[d] = {}
        for w in WINDOWS:
            totals, skipped = (conv.online_time_path(conv.as_date(d), f"w{w}", f) for f in ("totals.json", "skipped.json"))
            out[d][w] = core.window_point(_record(root, totals) if totals in have else None,
                                          _record(root, skipped) if skipped in have else None)
    return out


def late_plays(root: DataRoot, day: str, run_id: str | None = None, dag_id: str = "daily_analytics"):
    """The day's late plays (``core.late_plays``) from ``plays/D/cleanup.json`` and, when the run is known,
    its alert record ``alerts/<dag_id>/<run_id>/late_plays.json``; ``None``: none known."""
    d = conv.as_date(day)
    alert = _record(root, conv.alert_path(dag_id, run_id, "late_plays.json")) if run_id else None
    return core.late_plays(_record(root, conv.plays_path(conv.ymd(d), "cleanup.json")), alert, d.isoformat())


def late_days(root: DataRoot) -> set[str]:
    """The days (``YYYY-MM-DD``) with a ``cleanup.json``: the only ones ``late_plays`` reads for the overview."""
    out = set()
    for p in _found(root, "plays", "*", "cleanup.json"):
        try:
            out.add(conv.parse_ymd(p.split("/")[-2]).isoformat())
        except ValueError:
            continue
    return out


def accepted_missing(root: DataRoot, days_: list[str]) -> dict[str, dict[str, str]]:
    """``{day: core.accepted_missing}`` of the ``days_`` an operator accepted as lost (``missing/D.json``,
    written by ``video-analytics accept-missing``)."""
    from include.online_time.logs import MISSING_DIR, missing_path

    have = _found(root, MISSING_DIR, "*.json")
    out = {}
    for d in days_:
        rel = missing_path(conv.as_date(d))
        if rel in have:
            got = core.accepted_missing(_record(root, rel))
            if got is not None:
                out[d] = got
    return out
