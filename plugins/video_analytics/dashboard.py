"""The dashboard's numbers (pure: no Airflow, no I/O): day summaries, histogram bins, top-N, rates
and a video's heat map. ``include/dashboard.py`` reads the data root and hands the values here;
``video_analytics.charts`` draws them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from video_analytics.conventions import MAX_QUARANTINE_RATE, MAX_REJECT_RATE
from video_analytics.segments import merge_segments


def rate(part: float | None, whole: float | None) -> float | None:
    """``part / whole``; ``None`` when either is unknown, ``0.0`` for a zero denominator."""
    if part is None or whole is None:
        return None
    return float(part) / float(whole) if whole else 0.0


_THRESHOLD = re.compile(r"threshold\s+([0-9.]+)%")


def _reject_threshold(report: Mapping[str, Any] | None) -> float | None:
    """The reject threshold the day's verify used (its check detail says ``threshold 1.0000%``)."""
    for c in ((report or {}).get("checks") or {}).get("online_time", []):
        m = _THRESHOLD.search(str(c.get("detail", "")))
        if m:
            return float(m.group(1)) / 100
    return None


def _quarantine_threshold(report: Mapping[str, Any] | None) -> float | None:
    for c in ((report or {}).get("checks") or {}).get("plays", []):
        detail = c.get("detail")
        if c.get("name") == "quarantine_rate" and isinstance(detail, dict) and "threshold" in detail:
            return float(detail["threshold"])
    return None


def verify_outcome(report: Mapping[str, Any] | None) -> str:
    """``passed``, ``failed`` or ``none`` (no report yet)."""
    if not report:
        return "none"
    return "passed" if report.get("ok") else "failed"


def day_summary(day: str, totals: Mapping[str, Any] | None, ingest: Mapping[str, Any] | None,
                report: Mapping[str, Any] | None) -> dict[str, Any]:
    """One day's row of the dashboard from ``online_time/D/totals.json``, ``plays/D/ingest.json`` and
    ``reports/D.json`` (each may be missing: its numbers are then ``None``)."""
    totals, ingest = totals or {}, ingest or {}
    rows_in, rejects = totals.get("rows_in"), totals.get("rejects")
    unique, quarantined = ingest.get("unique"), ingest.get("quarantined")
    return {
        "day": day,
        "users": totals.get("users"),
        "online_seconds": totals.get("online_seconds"),
        "sessions": totals.get("sessions"),
        "rows_in": rows_in,
        "rejects": rejects,
        "reject_rate": rate(rejects, rows_in),
        "plays": ingest.get("ingested"),
        "unique_plays": unique,
        "quarantined": quarantined,
        "quarantine_rate": rate(quarantined, unique),
        "verify": verify_outcome(report),
        "failed": list((report or {}).get("failed") or []),
        "reject_threshold": _reject_threshold(report) or MAX_REJECT_RATE,
        "quarantine_threshold": _quarantine_threshold(report) or MAX_QUARANTINE_RATE,
    }


def nice_step(raw: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k that is >= ``raw`` (bin widths, axis maxima)."""
    if raw <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * exp >= raw:
            return m * exp
    return 10 * exp


def histogram(values: Sequence[float], bins: int = 20) -> list[dict[str, float]]:
    """Equal-width bins with round edges from 0 (online time is never negative) up to the maximum:
    ``[{"lo", "hi", "count"}]``; a value on an inner edge goes to the bin it starts; the last bin
    includes its upper edge. Counts add up to ``len(values)``. ``[]`` for no values."""
    import numpy as np

    arr = np.asarray(values, dtype="float64")
    if arr.size == 0:
        return []
    lo = min(0.0, float(arr.min()))
    hi = float(arr.max())
    step = nice_step((hi - lo) / max(bins, 1)) if hi > lo else 1.0
    n = max(1, math.ceil((hi - lo) / step)) if hi > lo else 1
    idx = np.minimum(((arr - lo) // step).astype("int64"), n - 1)
    counts = np.bincount(idx, minlength=n)
    return [{"lo": lo + i * step, "hi": lo + (i + 1) * step, "count": int(c)} for i, c in enumerate(counts)]


def top_n(rows: Iterable[Mapping[str, Any]], key: str, n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` rows with the largest ``key``; ties broken by ``vid`` (stable, reproducible)."""
    return sorted((dict(r) for r in rows), key=lambda r: (-float(r[key] or 0), str(r.get("vid", ""))))[:n]


def heat_runs(segments: Iterable[tuple[int, int, int]]) -> list[dict[str, int]]:
    """A video's day heat map from its ``(seg, heat, plays)`` rows: merged ``[2s-2, 2s]`` runs of
    equal heat (CONTRACT §3), with the plays that covered each run's first segment."""
    rows = sorted((int(s), int(h), int(p)) for s, h, p in segments)
    merged = merge_segments([2 * s - 2, 2 * s, h] for s, h, _ in rows)
    plays = {2 * s - 2: p for s, _, p in rows}
    return [{"start": a, "end": b, "heat": v, "plays": plays.get(a, 0)} for a, b, v in merged]


def bucket_runs(runs: Sequence[Mapping[str, int]], width: int) -> tuple[list[dict[str, int]], int | None]:
    """At most ``width`` marks for a heat strip: ``(runs, None)`` when they fit; else the timeline
    ``[0, end)`` cut into equal whole-second buckets (at most ``width``), each with the largest heat of
    the runs overlapping it, equal neighbours merged: ``(buckets, seconds per bucket)``. Gaps stay gaps."""
    if len(runs) <= width:
        return [dict(r) for r in runs], None
    end = max(int(r["end"]) for r in runs)
    step = max(1, math.ceil(end / width))
    top: dict[int, int] = {}
    for r in runs:
        for b in range(int(r["start"]) // step, (int(r["end"]) - 1) // step + 1):
            if top.get(b, -1) < r["heat"]:
                top[b] = int(r["heat"])
    out: list[dict[str, int]] = []
    for b in sorted(top):
        lo, hi = b * step, min((b + 1) * step, end)
        if out and out[-1]["end"] == lo and out[-1]["heat"] == top[b]:
            out[-1]["end"] = hi
        else:
            out.append({"start": lo, "end": hi, "heat": top[b]})
    return out, step


def bucket_max(values: Sequence[float | None], k: int) -> list[float | None]:
    """The largest known value of each ``k`` consecutive values (``None`` when none is known)."""
    out = []
    for i in range(0, len(values), k):
        known = [v for v in values[i:i + k] if v is not None]
        out.append(max(known) if known else None)
    return out


def merge_bins(bins: Sequence[Mapping[str, float]], most: int) -> list[dict[str, float]]:
    """Histogram bins with neighbours merged (counts summed) so that there are at most ``most``."""
    k = math.ceil(len(bins) / most)
    if k <= 1:
        return [dict(b) for b in bins]
    return [{"lo": bins[i]["lo"], "hi": bins[min(i + k, len(bins)) - 1]["hi"],
             "count": sum(b["count"] for b in bins[i:i + k])} for i in range(0, len(bins), k)]


def fmt_int(value: float | None) -> str:
    """``1,234,567``; ``–`` for unknown."""
    return "–" if value is None else f"{int(round(value)):,}"


def fmt_pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def fmt_hours(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 3600:,.1f} h"


def week_summary(end: str, days: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The week ending ``end`` from its days' ``day_summary`` rows (days without results are missing):
    plays summed, the latest window's users and online time, the days verified and the worst rates."""
    def known(key):
        return [d[key] for d in days if d.get(key) is not None]

    last = days[-1] if days else {}
    return {
        "end": end,
        "days_with_results": len(days),
        "days_verified": sum(1 for d in days if d.get("verify") == "passed"),
        "days_failed": [d["day"] for d in days if d.get("verify") == "failed"],
        "plays": int(sum(known("plays"))),
        "users_in_latest_window": last.get("users"),
        "online_seconds_in_latest_window": last.get("online_seconds"),
        "max_reject_rate": max(known("reject_rate"), default=None),
        "max_quarantine_rate": max(known("quarantine_rate"), default=None),
    }


def calendar(found: Sequence[str], today: dt.date, n: int) -> list[str]:
    """The ``n`` calendar days the overview's axis shows (``YYYY-MM-DD``, oldest first), days without
    results included (they are gaps): ending today when the newest day with results is among the last
    ``n`` days, else ending at that newest day (old data, such as a demo's, still shows). ``[]``: none."""
    if not found or n < 1:
        return []
    newest = dt.date.fromisoformat(max(found))
    end = today if 0 <= (today - newest).days < n else newest
    return [(end - dt.timedelta(days=i)).isoformat() for i in range(n - 1, -1, -1)]


def last_complete(rows: Iterable[Mapping[str, Any]], now: dt.datetime) -> dict[str, Any] | None:
    """The newest day whose verify report passed, and the hours from the end of that day (its data
    interval) to ``now``: ``{"day", "hours"}``; ``None`` when no day passed."""
    done = [r["day"] for r in rows if r.get("verify") == "passed"]
    if not done:
        return None
    day = max(done)
    end = dt.datetime.combine(dt.date.fromisoformat(day) + dt.timedelta(days=1), dt.time(), dt.UTC)
    return {"day": day, "hours": (now - end).total_seconds() / 3600}


def reason_counts(counts: Mapping[str, int], total: int | None = None) -> list[dict[str, Any]]:
    """``[{"reason", "count", "share"}]``, most frequent first (ties by reason); ``share`` of ``total``."""
    rows = sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))
    return [{"reason": k, "count": v, "share": rate(v, total)} for k, v in rows]


def retention_curve(segments: Iterable[tuple[int, int]], plays: float | None) -> list[dict[str, float]]:
    """A video's retention curve from its ``(seg, plays)`` rows (PlayMapSum: the plays that reached segment
    ``seg``, the seconds ``[2 seg - 2, 2 seg)``) and its number of plays: ``[{"second", "plays", "share"}]``
    for every segment from the first to the last (a segment no play reached has 0). ``[]`` when unknown."""
    reached = {int(s): int(p) for s, p in segments}
    if not reached or not plays:
        return []
    return [{"second": 2 * s - 2, "plays": reached.get(s, 0), "share": reached.get(s, 0) / float(plays)}
            for s in range(1, max(reached) + 1)]


_CSV_RISKY = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A value for a CSV cell that a spreadsheet will not run: text starting with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return gets a leading ``'``; numbers stay numbers; ``None`` is empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return value
    text = str(value)
    return "'" + text if text.startswith(_CSV_RISKY) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """RFC 4180 CSV (``\\r\\n`` line ends), every cell through ``csv_cell``."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([csv_cell(h) for h in header])
    for r in rows:
        w.writerow([csv_cell(v) for v in r])
    return buf.getvalue()


WINDOW_NAMES = {1: "DAU", 7: "WAU", 30: "MAU"}  # the windows of online_time/D/w<W>/ the overview draws


def _count(value: Any) -> float | None:
    """A finite number >= 0 from a results file, else ``None`` (drawn as a gap, never as 0)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    return value if ok else None


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _text(value: Any, most: int = 300) -> str:
    """A value from a record as one line for a page: control characters (NUL, newlines) as U+FFFD, cut."""
    return _CONTROL.sub("\ufffd", str(value))[:most]


def window_point(totals: Mapping[str, Any] | None, skipped: Mapping[str, Any] | None) -> dict[str, Any]:
    """One window's numbers on one day from ``online_time/D/w<W>/totals.json`` or ``skipped.json``:
    ``status`` ``ok``, ``skipped`` (a log was missing: ``why``), ``unreadable`` (not JSON: ``why``) or
    ``none`` (no folder); ``users``,
    ``online_seconds``, ``per_user`` (online seconds per active user) ``None`` unless known;
    ``missing_days``: the days accepted as missing that the window ran without."""
    point: dict[str, Any] = {"status": "none", "users": None, "online_seconds": None, "per_user": None,
                             "missing_days": [], "why": ""}
    for kind, got in (("skipped", skipped), ("unreadable", totals)):
        if isinstance(got, Mapping) and kind in got:
            return {**point, "status": kind, "why": _text(got[kind])}
    if not isinstance(totals, Mapping):
        return point
    users, online = _count(totals.get("users")), _count(totals.get("online_seconds"))
    missing = totals.get("missing_days")
    return {**point, "status": "ok", "users": users, "online_seconds": online,
            "per_user": online / users if users and online is not None else None,
            "missing_days": sorted({_text(m.get("day"), 40) for m in missing if isinstance(m, Mapping)})
            if isinstance(missing, list) else []}


def late_plays(cleanup: Mapping[str, Any] | None, alert: Mapping[str, Any] | None, day: str) -> dict[str, Any] | None:
    """A day's late plays (CONTRACT §4: still in ``T_endlist_D`` after cleanup): ``{"count", "list",
    "alerted_at"}`` from ``plays/D/cleanup.json`` (``remaining``), else the run's ``late_plays.json``
    alert; ``None`` when neither says any. A re-run of the day picks them up."""
    cleanup, alert = (r if isinstance(r, Mapping) else {} for r in (cleanup, alert))
    count = _count(cleanup.get("remaining")) if cleanup else _count(alert.get("count"))
    if not count:
        return None
    alerted = alert.get("timestamp")
    return {"count": int(count), "list": f"T_endlist_{day.replace('-', '')}",
            "alerted_at": _text(alerted, 40) if alerted else None}


def accepted_missing(record: Mapping[str, Any] | None) -> dict[str, str] | None:
    """A ``missing/D.json`` record (``video-analytics accept-missing``) as text for a page, else ``None``."""
    if record is None:
        return None
    if not isinstance(record, Mapping):
        record = {"unreadable": "not a JSON object"}
    out = {k: _text(record.get(k) or "") for k in ("reason", "accepted_by", "accepted_at")}
    return {**out, "reason": f"unreadable record: {record['unreadable']}"} if "unreadable" in record else out
