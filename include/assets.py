"""The Airflow Assets ``daily_analytics`` produces, and the metadata of their events.

| asset (name)                    | produced by              | URI                                             |
|---------------------------------|--------------------------|-------------------------------------------------|
| ``video_online_time``           | ``online_time.merge_report`` | ``<data root>/online_time``                 |
| ``video_play_documents``        | ``plays.rollup_videos``  | ``<data root>/plays`` (the documents, rebuilt)   |
| ``video_play_documents_mongodb``| ``plays.publish``        | ``x-mongodb://video_mongo/video`` (skipped = no event) |
| ``video_daily_verified``        | ``verify`` (checks passed)| ``<data root>/reports``                        |

Each event's ``extra`` carries the day and that step's counts and totals (see the ``*_metadata``
functions). The URIs are fixed when the DAG is parsed (no Variable or connection is read at parse time),
from ``include.settings.asset_data_root()``; the event's ``extra["uri"]`` is where the task actually
wrote. Airflow identifies an Asset by its name *and* URI: one metadata DB must see one URI per name, or
the newer one stays inactive and its producing task fails (``inactive_asset_message`` says why and what
to do). The tests, which give every run its own data root on one metadata DB, pin
``VIDEO_ASSET_DATA_ROOT`` for that reason (tests/conftest.py).

Light on purpose: the DAG files import it at parse time (``airflow.sdk`` and ``include.settings`` only).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset

from include.settings import asset_data_root

GROUP = "video_analytics"
ROOT_URI = asset_data_root()

ONLINE_TIME = Asset(name="video_online_time", uri=f"{ROOT_URI}/online_time", group=GROUP)
PLAY_DOCUMENTS = Asset(name="video_play_documents", uri=f"{ROOT_URI}/plays", group=GROUP)
PLAY_DOCUMENTS_MONGODB = Asset(name="video_play_documents_mongodb", uri="x-mongodb://video_mongo/video", group=GROUP)
DAILY_VERIFIED = Asset(name="video_daily_verified", uri=f"{ROOT_URI}/reports", group=GROUP)
ASSETS = (ONLINE_TIME, PLAY_DOCUMENTS, PLAY_DOCUMENTS_MONGODB, DAILY_VERIFIED)


def inactive_asset_message(exc: BaseException | None) -> str | None:
    """One line for Airflow's ``AirflowInactiveAssetInInletOrOutletException`` on these Assets (the data
    root changed under one metadata DB), saying what to do; ``None`` for any other error."""
    from airflow.sdk.exceptions import AirflowInactiveAssetInInletOrOutletException

    if not isinstance(exc, AirflowInactiveAssetInInletOrOutletException):
        return None
    ours = {a.name: a.uri for a in ASSETS}
    names = [k.name for k in exc.inactive_asset_keys if getattr(k, "name", None) in ours]
    if not names:
        return None
    return (f"Asset {', '.join(f'{n} ({ours[n]})' for n in names)} is inactive: this metadata DB knows it under "
            f"another URI, so the data root changed (the URIs name {ROOT_URI}, from VIDEO_ASSET_DATA_ROOT, else "
            "AIRFLOW_VAR_DATA_ROOT). Set VIDEO_ASSET_DATA_ROOT to the data root the metadata DB knows (Assets "
            "in the UI), or keep the new one: once the DAG files are parsed with it the scheduler retires the "
            "old URI (within [scheduler] parsing_cleanup_interval), then clear the task.")


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
            "uids": rollup.get("uids"), "kids": rollup.get("kids"), "documents": rollup.get("day_documents"),
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
