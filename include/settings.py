"""Where the pipeline's settings come from, for the DAG, the CLI and the tests alike.

* Airflow Variables ``log_dir`` and ``data_root`` (so also ``AIRFLOW_VAR_*``).
* Connections ``video_redis``, ``video_mysql`` and ``video_mongo`` (so also ``AIRFLOW_CONN_*``,
  URI or JSON), read through Airflow's own machinery.
* The pool that serialises publishing.

The local values (env vars, the pool) are set in one place: ``scripts/env.sh`` and
``scripts/airflow_stack.sh init``.
"""

from __future__ import annotations

import os

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
    """Whether the connection is defined (env, secrets backend or metadata DB).

    Only "not defined" is False: any other error looking it up (a secrets backend or the API
    server not answering) is raised, so it can never pass for an absent connection."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        Connection.get(conn_id)
    except AirflowNotFoundException:
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


def sibling_client(client, **overrides):
    """A client on the same server, database, credentials and TLS as ``client``, with ``overrides``
    (e.g. ``decode_responses``) applied."""
    import redis as redis_mod

    pool = client.connection_pool
    kwargs = {k: v for k, v in pool.connection_kwargs.items()
              if not k.startswith(("maint_notifications", "orig_", "oss_cluster"))}
    kwargs.update(overrides)
    return redis_mod.Redis(connection_pool=pool.__class__(connection_class=pool.connection_class, **kwargs))


def redis_client(conn_id: str = REDIS_CONN_ID):
    """A ``redis.Redis`` client through the provider's ``RedisHook`` (so the connection's login as
    an ACL user, password, SSL options and ``db`` extra are honoured), responses decoded as str.

    A URI's path (``redis://host:6379/3``) is taken as the db when the extra has none.
    """
    from airflow.providers.redis.hooks.redis import RedisHook
    from airflow.sdk import Connection

    client = RedisHook(redis_conn_id=conn_id).get_conn()
    overrides: dict = {"decode_responses": True}
    c = Connection.get(conn_id)
    if c.extra_dejson.get("db") is None and str(c.schema or "").isdigit():
        overrides["db"] = int(c.schema)
    return sibling_client(client, **overrides)


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
