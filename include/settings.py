"""Every setting of the pipeline is read here, for the DAG, the CLI and the tests alike
(the table of them all: docs/SETTINGS.md).

* Parse-time settings: the environment only (``VIDEO_*``). The DAG files read them while they are
  parsed, which must not query the metadata database, so setting them as Variables does nothing.
* Run-time settings of the environment: the day's lease and the connections' timeouts.
* Airflow Variables ``data_root``, ``log_dir`` and ``alert_emails`` (so also ``AIRFLOW_VAR_*``).
* Connections ``video_redis``, ``video_mysql``, ``video_mongo`` (so also ``AIRFLOW_CONN_*``, URI or
  JSON) and ``smtp_default``, read through Airflow's own machinery (in the CLI, where Airflow would read
  the environment alone, by ``include.conn_env`` without importing it); every client gets the connect and
  read timeouts. A malformed connection fails with one line naming it (never its password).
* The pool that serialises publishing.

The local values (env vars, the pool) are set in one place: ``scripts/env.sh`` and
``scripts/airflow_stack.sh init``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from contextlib import contextmanager

from include import conn_env

log = logging.getLogger(__name__)

REDIS_CONN_ID = "video_redis"
MYSQL_CONN_ID = "video_mysql"
MONGO_CONN_ID = "video_mongo"
SMTP_CONN_ID = "smtp_default"
STORAGE_CONN_ID = "video_storage"
MONGO_DB = "video"
PUBLISH_POOL = "video_publish"
PUBLISH_POOL_SLOTS = 1


def _env_number(name: str, default: float, kind=int, deprecated: str | None = None):
    """``kind(os.environ[name])`` (or the ``deprecated`` name's value), ``default`` when unset or not
    a number (with a warning naming the variable)."""
    raw, source = os.environ.get(name), name
    if not raw and deprecated and os.environ.get(deprecated):
        raw, source = os.environ[deprecated], deprecated
        log.warning("%s is deprecated (it is read from the environment only, never as a Variable): "
                    "set %s instead", deprecated, name)
    if not raw:
        return kind(default)
    try:
        return kind(raw)
    except ValueError:
        log.warning("%s=%r is not a number; using %s", source, raw, default)
        return kind(default)


# ---- parse-time settings: the environment only -------------------------------------------------


def sensor_timeout_seconds() -> int:
    """How long the sensors wait for the day's inputs (``VIDEO_SENSOR_TIMEOUT_SECONDS``, 6 h)."""
    return _env_number("VIDEO_SENSOR_TIMEOUT_SECONDS", 6 * 3600)


def sensor_poke_seconds() -> int:
    """Seconds between two pokes of a sensor (``VIDEO_SENSOR_POKE_SECONDS``, 60)."""
    return _env_number("VIDEO_SENSOR_POKE_SECONDS", 60)


def retry_delay_seconds() -> int:
    """Seconds before a failed task's retry (``VIDEO_RETRY_DELAY_SECONDS``, 300)."""
    return _env_number("VIDEO_RETRY_DELAY_SECONDS", 300)


def task_timeout_minutes() -> int:
    """A task's ``execution_timeout`` (``VIDEO_TASK_TIMEOUT_MINUTES``, 120)."""
    return _env_number("VIDEO_TASK_TIMEOUT_MINUTES", 120)


def deadline_enabled() -> bool:
    """Whether ``daily_analytics`` has its deadline alert (``VIDEO_DEADLINE``; off = ``off``/``0``/``false``)."""
    return os.environ.get("VIDEO_DEADLINE", "").lower() not in ("off", "0", "false")


DEFAULT_DEADLINE_HOURS = 6.0


def deadline_hours() -> float:
    """Hours after the end of its day by which a run must be done (``VIDEO_DEADLINE_HOURS``, 6).

    ``AIRFLOW_VAR_DEADLINE_HOURS``, its old name, still works with a deprecation warning: it looked
    like a Variable but never was one (a Variable set in the UI did nothing)."""
    return _env_number("VIDEO_DEADLINE_HOURS", DEFAULT_DEADLINE_HOURS, float, deprecated="AIRFLOW_VAR_DEADLINE_HOURS")


def schedule_end_date():
    """The last day ``daily_analytics`` is scheduled for (``VIDEO_SCHEDULE_END_DATE``, ``YYYY-MM-DD``; unset:
    no end). The DAG's ``end_date``: no scheduled run after it, and no run of a later day runs (the
    local demo stack sets it to its demo day, so it never schedules a real date; never set in production).
    A value that is not a date fails the DAG's import with one line naming the variable."""
    import datetime as dt

    raw = (os.environ.get("VIDEO_SCHEDULE_END_DATE") or "").strip()
    if not raw:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"VIDEO_SCHEDULE_END_DATE={raw[:40]!r} is not a date (YYYY-MM-DD)") from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def asset_data_root() -> str:
    """The data root the Assets' URIs name: ``VIDEO_ASSET_DATA_ROOT``, else ``AIRFLOW_VAR_DATA_ROOT``,
    else ``$VIDEO_ROOT/var/data/root``; a path becomes a ``file://`` URL."""
    url = os.environ.get("VIDEO_ASSET_DATA_ROOT") or os.environ.get("AIRFLOW_VAR_DATA_ROOT") or os.path.join(
        os.environ.get("VIDEO_ROOT", os.getcwd()), "var", "data", "root")
    if "://" not in url:
        url = "file://" + os.path.abspath(url)
    return url.rstrip("/")


# ---- run-time settings of the environment ----------------------------------------------------


def lease_ttl_seconds() -> int:
    """Expiry of the day's lease in Redis, renewed while held (``VIDEO_LEASE_TTL_SECONDS``, 60)."""
    return _env_number("VIDEO_LEASE_TTL_SECONDS", 60)


def connect_timeout_seconds() -> float:
    """Longest wait to open a connection to Redis, MySQL or MongoDB (``VIDEO_CONNECT_TIMEOUT_SECONDS``, 10)."""
    return _env_number("VIDEO_CONNECT_TIMEOUT_SECONDS", 10.0, float)


def read_timeout_seconds() -> float:
    """Longest wait for a reply of Redis, MySQL or MongoDB (``VIDEO_READ_TIMEOUT_SECONDS``, 120)."""
    return _env_number("VIDEO_READ_TIMEOUT_SECONDS", 120.0, float)


def smtp_timeout_seconds() -> float:
    """Longest wait for the SMTP server of ``smtp_default`` (``VIDEO_SMTP_TIMEOUT_SECONDS``, 10), unless its
    extra sets ``timeout``: a frozen mail server cannot hold a task's failure callback longer."""
    return _env_number("VIDEO_SMTP_TIMEOUT_SECONDS", 10.0, float)


def api_base_url() -> str:
    """Airflow's ``[api] base_url``, the root of the links in the alert e-mails."""
    try:
        from airflow.sdk import conf

        url = conf.get("api", "base_url", fallback="") or ""
    except Exception:
        url = ""
    return (url or "http://localhost:8080").rstrip("/")


# ---- Airflow Variables ------------------------------------------------------------------------


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


def env_variable(name: str) -> str | None:
    """``AIRFLOW_VAR_<NAME>`` alone, without asking Airflow (which may take seconds outside a task)."""
    return os.environ.get(f"AIRFLOW_VAR_{name.upper()}") or None


def data_root():
    """The data root (Variable ``data_root``)."""
    from include.storage import DataRoot

    return DataRoot(variable("data_root"))


def storage_connection():
    """The ``video_storage`` connection (the object store's endpoint and credentials), ``None`` when it is
    not defined; a malformed one raises ``ConnectionSettingError`` (``connection``)."""
    try:
        return connection(STORAGE_CONN_ID)
    except not_defined():
        return None


def log_dir() -> str:
    """The action-log folder (Variable ``log_dir``)."""
    return variable("log_dir")


def alert_emails() -> list[str]:
    """Who gets the e-mail alerts (Variable ``alert_emails``, comma separated; none by default)."""
    return [a.strip() for a in variable("alert_emails", "").split(",") if a.strip()]


# ---- connections ------------------------------------------------------------------------------


class ConnectionSettingError(ValueError):
    """A connection that is set but malformed; the message names it, never its password."""


def _redact(text: str, raw: str = "") -> str:
    """``text`` without the passwords found in ``raw`` (a URI or JSON connection) or in ``text``."""
    from urllib.parse import quote_plus

    secrets = re.findall(r"://[^:@/\s]*:([^@/\s]+)@", raw + " " + text)
    secrets += re.findall(r'"password"\s*:\s*"([^"]*)"', raw)
    text = re.sub(r"(://[^:@/\s]*:)[^@/\s]+@", r"\1***@", text)
    text = re.sub(r'("password"\s*:\s*)"[^"]*"', r'\1"***"', text)
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        for form in {secret, quote_plus(secret)}:  # whole words only: a password "video" keeps "video_mysql"
            text = re.sub(rf"(?<!\w){re.escape(form)}(?!\w)", "***", text)
    return text


def _env_value(conn_id: str) -> str:
    return os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}", "")


def _parse_error(conn_id: str, raw: str) -> str:
    """Why Airflow could not read ``AIRFLOW_CONN_<ID>`` (it reports such a connection as not defined)."""
    from airflow.models.connection import Connection

    try:
        if raw.lstrip().startswith("{"):
            Connection.from_json(raw, conn_id=conn_id)
        else:
            Connection(conn_id=conn_id, uri=raw)
    except Exception as exc:
        return _redact(f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}", raw)
    return "Airflow cannot read it"


def not_defined() -> tuple[type[Exception], ...]:
    """What ``connection`` raises for a connection that is not defined (Airflow's only once it is imported)."""
    exceptions = sys.modules.get("airflow.sdk.exceptions")
    found = (exceptions.AirflowNotFoundException,) if exceptions is not None else ()
    return (conn_env.ConnectionNotDefined, *found)


def connection(conn_id: str):
    """The Airflow connection ``conn_id`` (``conn_env`` reads it from the environment where that is all
    Airflow would do); one of ``not_defined()`` when it is not defined and ``ConnectionSettingError`` when
    ``AIRFLOW_CONN_<ID>`` is set but malformed or its port is not one."""
    c = conn_env.lookup(conn_id, os.environ)
    if c is None:
        c = _airflow_connection(conn_id)
    if c.port is not None and not (str(c.port).isdigit() and 0 < int(c.port) < 65536):
        raise ConnectionSettingError(f"connection {conn_id}: port {c.port!r} is not a port number (1-65535)")
    return c


def _airflow_connection(conn_id: str):
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        raw = _env_value(conn_id)
        if raw.strip():
            raise ConnectionSettingError(f"connection {conn_id}: AIRFLOW_CONN_{conn_id.upper()} is set but is not "
                                         f"a valid connection ({_parse_error(conn_id, raw)})") from None
        raise


@contextmanager
def _building(conn_id: str):
    """Any error while a client is built from the connection: one line naming it, without secrets."""
    try:
        yield
    except (ConnectionSettingError, *not_defined()):
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ConnectionSettingError(f"connection {conn_id} is malformed: "
                                     f"{_redact(f'{type(exc).__name__}: {first}', _env_value(conn_id))}") from None


def has_connection(conn_id: str) -> bool:
    """Whether the connection is defined (env, secrets backend or metadata DB).

    Only "not defined" is False: a malformed ``AIRFLOW_CONN_<ID>`` or any other error looking it up
    (a secrets backend or the API server not answering) is raised, so it never passes for an absent
    connection."""
    try:
        connection(conn_id)
    except not_defined():
        return False
    return True


def describe_connection(conn_id: str) -> str:
    """``video_redis (127.0.0.1:6379)``: a connection for an error message, without its secrets."""
    try:
        c = connection(conn_id)
    except ConnectionSettingError:
        return f"{conn_id} (malformed)"
    except Exception:
        return f"{conn_id} (not defined)"
    where = f"{c.host or '127.0.0.1'}:{c.port}" if c.port else (c.host or "default host")
    return f"{conn_id} ({where})"


def sibling_client(client, **overrides):
    """A client on the same server, database, credentials, TLS and timeouts as ``client``, with
    ``overrides`` (e.g. ``decode_responses``) applied."""
    import redis as redis_mod

    pool = client.connection_pool
    kwargs = {k: v for k, v in pool.connection_kwargs.items()
              if not k.startswith(("maint_notifications", "orig_", "oss_cluster"))}
    kwargs.update(overrides)
    return redis_mod.Redis(connection_pool=pool.__class__(connection_class=pool.connection_class, **kwargs))


def redis_client(conn_id: str = REDIS_CONN_ID):
    """A ``redis.Redis`` client through the provider's ``RedisHook`` (so the connection's login as
    an ACL user, password, SSL options and ``db`` extra are honoured), responses decoded as str.

    A URI's path (``redis://host:6379/3``) is taken as the db when the extra has none. Connect and read
    timeouts from the settings; a command is retried once on a dropped connection, never on a timeout
    (it may have run: the task's retry runs it again, under the day's lease)."""
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    with _building(conn_id):
        c = connection(conn_id)
        db = c.extra_dejson.get("db")
        if db is None and str(c.schema or "").isdigit():
            db = int(c.schema)
        if db is not None and not str(db).isdigit():
            raise ConnectionSettingError(f"connection {conn_id}: db {db!r} is not a database number")
        if isinstance(c, conn_env.EnvConnection) and set(c.extra_dejson) <= {"db"}:
            client = conn_env.redis_client(c)
        else:
            from airflow.providers.redis.hooks.redis import RedisHook

            client = RedisHook(redis_conn_id=conn_id).get_conn()
        return sibling_client(client, decode_responses=True, port=int(c.port or 6379),
                              db=int(db or 0), socket_connect_timeout=connect_timeout_seconds(),
                              socket_timeout=read_timeout_seconds(),
                              retry=Retry(ExponentialWithJitterBackoff(base=0.1, cap=1), 1,
                                          supported_errors=(RedisConnectionError,)))


def mysql_hook(conn_id: str = MYSQL_CONN_ID):
    """Airflow's ``MySqlHook`` for the category lookup, its connections opened with the connect and
    read timeouts (unless the connection's extra sets ``connect_timeout``/``read_timeout``); without other
    extras, outside Airflow, the same configuration on ``conn_env.MySqlRecords``."""
    with _building(conn_id):
        c = connection(conn_id)
        if isinstance(c, conn_env.EnvConnection) and set(c.extra_dejson) <= conn_env.MYSQL_EXTRAS:
            return conn_env.MySqlRecords(_with_timeouts(conn_env.mysql_config(c), c.extra_dejson, "connect_timeout"))
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    class TimedMySqlHook(MySqlHook):
        def _get_conn_config_mysql_client(self, conn) -> dict:
            cfg = super()._get_conn_config_mysql_client(conn)
            return _with_timeouts(cfg, conn.extra_dejson, "connect_timeout")

        def _get_conn_config_mysql_connector_python(self, conn) -> dict:
            cfg = super()._get_conn_config_mysql_connector_python(conn)
            return _with_timeouts(cfg, conn.extra_dejson, "connection_timeout")

    with _building(conn_id):
        return TimedMySqlHook(mysql_conn_id=conn_id)


def _with_timeouts(cfg: dict, extra: dict, connect_key: str) -> dict:
    read = int(max(1, round(read_timeout_seconds())))
    cfg[connect_key] = int(extra.get(connect_key) or max(1, round(connect_timeout_seconds())))
    cfg["read_timeout"] = int(extra.get("read_timeout") or read)
    cfg["write_timeout"] = int(extra.get("write_timeout") or read)
    return cfg


def mongo_db(conn_id: str = MONGO_CONN_ID, db_name: str = MONGO_DB):
    """The ``video`` database through Airflow's ``MongoHook``, or ``None`` without a connection.

    ``serverSelectionTimeoutMS``/``connectTimeoutMS`` from the connect timeout and ``socketTimeoutMS``
    from the read timeout, unless the connection's extra sets them."""
    if not has_connection(conn_id):
        return None
    from airflow.providers.mongo.hooks.mongo import MongoHook

    with _building(conn_id):
        hook = MongoHook(mongo_conn_id=conn_id)
        connect_ms, read_ms = int(connect_timeout_seconds() * 1000), int(read_timeout_seconds() * 1000)
        for key, ms in (("serverSelectionTimeoutMS", connect_ms), ("connectTimeoutMS", connect_ms),
                        ("socketTimeoutMS", read_ms)):
            hook.extras.setdefault(key, ms)
        return hook.get_conn()[db_name]


def smtp_hook(conn_id: str = SMTP_CONN_ID):
    """Airflow's ``SmtpHook`` on ``conn_id`` with a timeout (``smtp_timeout_seconds``) and no retries, unless
    the connection's extra sets ``timeout`` / ``retry_limit`` (the provider's defaults, 30 s and 5 retries,
    let a frozen server hold the caller for minutes)."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    class TimedSmtpHook(SmtpHook):
        @property
        def timeout(self) -> int:
            return int(self.conn.extra_dejson.get("timeout") or max(1, round(smtp_timeout_seconds())))

        @property
        def smtp_retry_limit(self) -> int:
            return int(self.conn.extra_dejson.get("retry_limit", 0))

    with _building(conn_id):
        connection(conn_id)
        return TimedSmtpHook(smtp_conn_id=conn_id)
