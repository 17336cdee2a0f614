"""Where the pipeline's settings come from, for the DAG, the CLI and the tests alike.

* Airflow Variables ``log_dir`` and ``data_root`` (so also ``AIRFLOW_VAR_*``).
* Connections ``video_redis``, ``video_mysql`` and ``video_mongo`` (so also ``AIRFLOW_CONN_*``,
  URI or JSON), read through Airflow's own machinery.
* The pool that serialises publishing, and the day a run processes.

The local values (env vars, the pool) are set in one place: ``scripts/env.sh`` and
``scripts/airflow_stack.sh init``.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

REDIS_CONN_ID = "video_redis"
MYSQL_CONN_ID = "video_mysql"
MONGO_CONN_ID = "video_mongo"
MONGO_DB = "video"
PUBLISH_POOL = "video_publish"
PUBLISH_POOL_SLOTS = 1


def variable(name: str, default: str | None = None) -> str:
    """An Airflow Variable, falling back to ``AIRFLOW_VAR_<NAME>`` then ``default``."""
    env = os.environ.get(f"AIRFLOW_VAR_{name.upper()}")
    if env:
        return env
    try:
        from airflow.sdk import Variable

        return Variable.get(name)
    except Exception:
        if default is None:
            raise LookupError(f"Airflow Variable {name!r} is not set (nor AIRFLOW_VAR_{name.upper()})") from None
        return default


def has_connection(conn_id: str) -> bool:
    """Whether the connection is defined (env, secrets backend or metadata DB)."""
    from airflow.sdk import Connection

    try:
        Connection.get(conn_id)
    except Exception:
        return False
    return True


def describe_connection(conn_id: str) -> str:
    """``video_redis (127.0.0.1:6379)``: a connection for an error message, without its secrets."""
    try:
        from airflow.sdk import Connection

        c = Connection.get(conn_id)
    except Exception:
        return f"{conn_id} (not defined)"
    where = f"{c.host or '127.0.0.1'}:{c.port}" if c.port else (c.host or "default host")
    return f"{conn_id} ({where})"


def redis_client(conn_id: str = REDIS_CONN_ID):
    """A ``redis.Redis`` client from the Airflow connection (responses decoded as str)."""
    import redis
    from airflow.sdk import Connection

    c = Connection.get(conn_id)
    db = int(c.schema or c.extra_dejson.get("db", 0) or 0)
    return redis.Redis(
        host=c.host or "127.0.0.1",
        port=int(c.port or 6379),
        db=db,
        password=c.password or None,
        decode_responses=True,
    )


def mysql_hook(conn_id: str = MYSQL_CONN_ID):
    """Airflow's ``MySqlHook`` for the category lookup."""
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    return MySqlHook(mysql_conn_id=conn_id)


def mongo_db(conn_id: str = MONGO_CONN_ID, db_name: str = MONGO_DB):
    """The ``video`` database through Airflow's ``MongoHook``, or ``None`` without a connection."""
    if not has_connection(conn_id):
        return None
    from airflow.providers.mongo.hooks.mongo import MongoHook

    return MongoHook(mongo_conn_id=conn_id).get_conn()[db_name]


def data_root():
    """The data root (Variable ``data_root``)."""
    from include.storage import DataRoot

    return DataRoot(variable("data_root"))


def log_dir() -> str:
    """The action-log folder (Variable ``log_dir``)."""
    return variable("log_dir")


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
