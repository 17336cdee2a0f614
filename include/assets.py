"""The Airflow Assets ``daily_analytics`` produces, and the metadata of their events.

| asset (name)                    | produced by              | URI                                             |
|---------------------------------|--------------------------|-------------------------------------------------|
| ``video_online_time``           | ``online_time.merge_report`` | ``x-video-data-root://online_time``         |
| ``video_play_documents``        | ``plays.rollup_videos``  | ``x-video-data-root://plays`` (the documents)    |
| ``video_play_documents_mongodb``| ``plays.publish``        | ``x-mongodb://video_mongo/video`` (skipped = no event) |
| ``video_daily_verified``        | ``verify`` (checks passed)| ``x-video-data-root://reports``                |

Each event's ``extra`` carries the day and that step's counts and totals (see the ``*_metadata``
functions), and ``extra["uri"]``, the folder actually written on the data root. The Asset URIs name the
folder relative to the data root, not its location: Airflow identifies an Asset by name and URI, so a
URI that followed ``AIRFLOW_VAR_DATA_ROOT`` would make each deployment's (or test's) data root a
conflicting Asset of the same name and cut downstream schedules off when the root moves.

Light on purpose: the DAG files import it at parse time (``os`` and ``airflow.sdk`` only).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset

GROUP = "video_analytics"


ROOT_SCHEME = "x-video-data-root://"

ONLINE_TIME = Asset(name="video_online_time", uri=f"{ROOT_SCHEME}online_time", group=GROUP)
PLAY_DOCUMENTS = Asset(name="video_play_documents", uri=f"{ROOT_SCHEME}plays", group=GROUP)
PLAY_DOCUMENTS_MONGODB = Asset(name="video_play_documents_mongodb", uri="x-mongodb://video_mongo/video", group=GROUP)
DAILY_VERIFIED = Asset(name="video_daily_verified", uri=f"{ROOT_SCHEME}reports", group=GROUP)


def emit(context: dict[str, Any], asset: Asset, extra: dict[str, Any]) -> None:
    """Attach ``extra`` to the asset event the task emits for ``asset`` when it succeeds."""
    events = context.get("outlet_events")
    if events is not None:  # absent when a task function is called outside Airflow (CLI, tests)
        events[asset].extra.update(extra)


def online_time_metadata(day: str, totals: dict[str, Any], uri: str) -> dict[str, Any]:
    rows_in, rejects = totals.get("rows_in") or 0, totals.get("rejects") or 0
    return {"day": day, "uri": uri, "users": totals.get("users"), "online_seconds": totals.get("online_seconds"),
            "sessions": totals.get("sessions"), "rows_in": rows_in, "rejects": rejects,
            "reject_rate": round(rejects / rows_in, 6) if rows_in else 0.0,
            "verify": "pending (reject threshold passed; full outcome on video_daily_verified)"}


def play_documents_metadata(day: str, rollup: dict[str, Any], uri: str) -> dict[str, Any]:
    return {"day": day, "uri": uri, "plays": rollup.get("plays"), "vids": rollup.get("vids"),
            "uids": rollup.get("uids"), "kids": rollup.get("kids"), "day_documents": rollup.get("day_documents"),
            "totals_head": (rollup.get("totals") or {}).get("head"),
            "days_folded": len((rollup.get("totals") or {}).get("days_folded") or []),
            "verify": "pending (full outcome on video_daily_verified)"}


def published_metadata(day: str, published: dict[str, Any]) -> dict[str, Any]:
    return {"day": day, "collections": published.get("collections"), "upserts": published.get("upserts"),
            "unchanged": published.get("unchanged"), "bulk_calls": published.get("bulk_calls")}


def verified_metadata(day: str, report: dict[str, Any], summary: dict[str, Any], uri: str) -> dict[str, Any]:
    """The verify outcome with the day's headline numbers (``video_analytics.dashboard.day_summary``)."""
    keys = ("users", "online_seconds", "rows_in", "rejects", "reject_rate", "plays", "unique_plays", "quarantined",
            "quarantine_rate")
    return {"day": day, "uri": uri, "verify": "passed" if report.get("ok") else "failed",
            "failed": list(report.get("failed") or []),
            "checks": sum(len(c) for c in (report.get("checks") or {}).values()),
            **{k: summary.get(k) for k in keys}}
