"""Glue between Airflow task context and the adapters: the day a run processes, its settings."""

from __future__ import annotations

import datetime as dt
from typing import Any

from include.config import variable
from include.storage import DataRoot


def run_day(context: dict[str, Any]) -> dt.date:
    """The day a run processes: ``params.day`` when given, else the run's logical date.

    With the DAG's daily data-interval timetable, the run with logical date D covers [D, D+1),
    so ``airflow dags test daily_analytics 2014-01-07`` and a backfill both process the
    logical dates themselves.
    """
    params = context.get("params") or {}
    if params.get("day"):
        return dt.date.fromisoformat(str(params["day"]))
    for key in ("logical_date", "data_interval_start"):
        value = context.get(key)
        if value is not None:
            return value.date()
    return (context["dag_run"].run_after - dt.timedelta(days=1)).date()


def ymd(day: dt.date) -> str:
    """Redis / Mongo day format, ``20140107``."""
    return day.strftime("%Y%m%d")


def data_root() -> DataRoot:
    return DataRoot(variable("data_root"))


def log_dir() -> str:
    return variable("log_dir")
