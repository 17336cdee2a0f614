"""The day's verification report: checks of results against inputs, written to the data root."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from include.errors import VerificationFailed
from include.storage import DataRoot
from video_analytics import conventions as conv

log = logging.getLogger(__name__)


def build_report(day: dt.date, sections: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Combine check lists ``{"name", "ok", "detail"}`` per section into one report."""
    failed = [f"{sec}.{c['name']}" for sec, checks in sections.items() for c in checks if not c["ok"]]
    return {
        "day": day.isoformat(),
        "ok": not failed,
        "failed": failed,
        "checks": sections,
        "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def summary(report: dict[str, Any]) -> str:
    """A few lines for the task log and the UI."""
    lines = [f"verify {report['day']}: {'OK' if report['ok'] else 'FAILED'}"]
    for sec, checks in report["checks"].items():
        for c in checks:
            lines.append(f"  [{'ok' if c['ok'] else 'FAIL'}] {sec}.{c['name']}: {c['detail']}")
    return "\n".join(lines)


def _checks(fn, *args, **kwargs) -> list[dict[str, Any]]:
    """A section's checks; a section that cannot even read its results is one failed check."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # a missing or unreadable result is a failed check, not a crash
        return [{"name": "results_readable", "ok": False, "detail": f"{type(exc).__name__}: {exc}"}]


def write_report(root: DataRoot, day: dt.date, sections: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Build and write ``reports/<day>.json``, naming the plays ingest run it vouches for (``cleanup``
    acts only on a passing report of the current run)."""
    report = build_report(day, sections)
    ingest = conv.plays_path(conv.ymd(day), "ingest.json")
    report["plays_run_id"] = root.read_json(ingest).get("run_id") if root.exists(ingest) else None
    from include.plays.lease import ensure_held

    ensure_held()
    root.write_json(report, conv.report_path(day))
    return report


def verify_day(
    root: DataRoot,
    day: dt.date,
    *,
    window_days: int = conv.WINDOW_DAYS,
    max_reject_rate: float = conv.MAX_REJECT_RATE,
    max_quarantine_rate: float = conv.MAX_QUARANTINE_RATE,
    mongo_db=None,
    redis=None,
    alert=None,
) -> dict[str, Any]:
    """Run both parts' checks, write ``reports/<day>.json`` and raise if any check failed.

    ``alert(name, kind, what, **details)`` (``alerts.run_alert`` bound to the task's context), when given,
    is called before that: ``rates`` for a reject or quarantine rate past half its threshold but within
    it (past it, a check fails: the task's failure alerts), ``missing_days`` when the window ran
    without days accepted as missing."""
    from include.online_time.verify import verify_online_time
    from include.plays.verify import verify_plays

    sections = {
        "online_time": _checks(verify_online_time, root, day, max_reject_rate=max_reject_rate),
        "plays": _checks(verify_plays, root, conv.ymd(day), mongo_db=mongo_db,
                         max_quarantine_rate=max_quarantine_rate, redis=redis),
    }
    report = write_report(root, day, sections)
    if alert is not None:
        raise_warnings(root, day, report, alert, max_reject_rate, max_quarantine_rate)
    text = summary(report)
    (log.info if report["ok"] else log.error)("%s\nreport: %s", text, root.uri(conv.report_path(day)))
    if not report["ok"]:
        raise VerificationFailed(f"{len(report['failed'])} check(s) failed: {', '.join(report['failed'])}")
    return {"day": report["day"], "ok": True, "checks": sum(len(c) for c in sections.values()),
            "report": root.uri(conv.report_path(day))}


def rates_past_half(root: DataRoot, day: dt.date, report: dict[str, Any], max_reject_rate: float,
                    max_quarantine_rate: float) -> list[dict[str, Any]]:
    """The day's reject and quarantine rates past half their threshold and not past it."""
    from video_analytics.checks import rate

    out = []
    manifest = conv.online_time_path(day, "partition.json")
    if root.exists(manifest):
        part = root.read_json(manifest)
        rows_in, rejects = int(part.get("rows_in") or 0), int(part.get("rejects") or 0)
        out.append({"name": "reject rate", "rate": rate(rejects, rows_in), "threshold": max_reject_rate,
                    "count": rejects, "of": rows_in, "path": root.uri(part.get("rejects_path", manifest))})
    for c in report["checks"].get("plays", []):
        d = c.get("detail")
        if c.get("name") == "quarantine_rate" and isinstance(d, dict) and "rate" in d:
            out.append({"name": "quarantine rate", "rate": float(d["rate"]), "threshold": max_quarantine_rate,
                        "count": d.get("quarantined"), "reasons": d.get("reasons"), "path": d.get("path")})
    return [r for r in out if r["threshold"] / 2 < r["rate"] <= r["threshold"]]


def raise_warnings(root: DataRoot, day: dt.date, report: dict[str, Any], alert, max_reject_rate: float,
                   max_quarantine_rate: float) -> None:
    """The ``rates`` and ``missing_days`` alerts of a verified day (see ``verify_day``)."""
    rates = rates_past_half(root, day, report, max_reject_rate, max_quarantine_rate)
    if rates:
        alert("rates", "rate_warning", "; ".join(
            f"{r['name']} {r['rate']:.2%} ({r['count']} of {r.get('of', 'the day')}) is past half its "
            f"threshold {r['threshold']:.2%}" for r in rates), rates=rates)
    missing = window_missing_days(root, day)
    if missing:
        from include.online_time.verify import describe_missing

        alert("missing_days", "missing_days", f"the windows ran without the logs of {len(missing)} day(s) "
              f"accepted as missing: {describe_missing(missing)}", days=[m["day"] for m in missing],
              missing=missing)


def window_missing_days(root: DataRoot, day: dt.date) -> list[dict[str, Any]]:
    """The days accepted as missing that any of D's windows ran without (the report's ``partition.json``
    and every ``w<W>/totals.json``), once each, by date."""
    manifests = [conv.online_time_path(day, "partition.json")]
    manifests += [conv.online_time_path(day, p.rstrip("/").split("/")[-2], "totals.json")
                  for p in root.glob(conv.online_time_path(day, "w*", "totals.json"))]
    seen: dict[str, dict[str, Any]] = {}
    for rel in manifests:
        try:
            found = root.read_json(rel).get("missing_days")  # one GET (no HEAD first): absent is an error too
        except Exception:  # an absent or unreadable manifest is verify's failed check, not a lost alert
            continue
        for m in found if isinstance(found, list) else []:
            if isinstance(m, dict) and isinstance(m.get("day"), str):
                seen.setdefault(m["day"], m)
    return [seen[d] for d in sorted(seen)]
