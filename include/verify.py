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
) -> dict[str, Any]:
    """Run both parts' checks, write ``reports/<day>.json`` and raise if any check failed."""
    from include.online_time.verify import verify_online_time
    from include.plays.verify import verify_plays

    sections = {
        "online_time": _checks(verify_online_time, root, day, max_reject_rate=max_reject_rate),
        "plays": _checks(verify_plays, root, conv.ymd(day), mongo_db=mongo_db,
                         max_quarantine_rate=max_quarantine_rate, redis=redis),
    }
    report = write_report(root, day, sections)
    text = summary(report)
    (log.info if report["ok"] else log.error)("%s\nreport: %s", text, root.uri(conv.report_path(day)))
    if not report["ok"]:
        raise VerificationFailed(f"{len(report['failed'])} check(s) failed: {', '.join(report['failed'])}")
    return {"day": report["day"], "ok": True, "checks": sum(len(c) for c in sections.values()),
            "report": root.uri(conv.report_path(day))}
