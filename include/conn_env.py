"""Connections read from ``AIRFLOW_CONN_<ID>`` without importing Airflow (~1.8 s of every CLI command's start).

Outside a task, with no secrets backend configured, Airflow looks a connection up in the environment alone
(``ensure_secrets_backend_loaded``'s fallback chain: no metadata database). Where that holds, and Airflow is
not imported yet (the CLI; a task always has it), ``lookup`` parses the variable as Airflow's ``Connection``
does (``from_uri`` / ``from_json``). ``None`` means "ask Airflow": another process context, a secrets
backend, a value this parser is unsure of (Airflow then gives its own answer and errors). The clients built
here are the ones the providers' hooks build for a connection without extras (other extras go through the
hooks); ``tests/unit/test_conn_env.py`` holds both to Airflow's own results.
"""

from __future__ import annotations

import configparser
import json
import os
import sys
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

_FIELDS = ("conn_type", "description", "host", "schema", "login", "password", "port", "extra")
# [section] key of a configured secrets backend, in the environment (also _CMD / _SECRET) or airflow.cfg
_BACKEND_KEYS = (("secrets", "backend"), ("workers", "secrets_backend"))
MYSQL_EXTRAS = frozenset({"connect_timeout", "read_timeout", "write_timeout"})  # read by settings' timeouts


class ConnectionNotDefined(LookupError):
    """No ``AIRFLOW_CONN_<ID>``, where that is the only place Airflow would look."""


@dataclass(frozen=True)
class EnvConnection:
    """The fields of Airflow's ``Connection`` that the settings read."""

    conn_id: str
    conn_type: str | None = None
    description: str | None = None
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = None
    port: int | None = None
    extra: str | None = None

    @property
    def extra_dejson(self) -> dict:
        return json.loads(self.extra) if self.extra else {}


def _config_sets_backend(environ: Mapping[str, str]) -> bool:
    """Whether ``environ`` or airflow.cfg names a secrets backend (unreadable config: assume it does)."""
    for section, key in _BACKEND_KEYS:
        name = f"AIRFLOW__{section.upper()}__{key.upper()}"
        if any(environ.get(name + tail, "").strip() for tail in ("", "_CMD", "_SECRET")):
            return True
    home = environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    path = environ.get("AIRFLOW_CONFIG") or os.path.join(home, "airflow.cfg")
    if not os.path.exists(path):
        return False
    cfg = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        cfg.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeError):
        return True
    return any(cfg.get(section, key + tail, fallback="").strip()
               for section, key in _BACKEND_KEYS for tail in ("", "_cmd", "_secret"))


def applies(environ: Mapping[str, str]) -> bool:
    """Whether Airflow would read connections from the environment (``environ``) alone, and is not imported yet."""
    return ("airflow" not in sys.modules and not environ.get("_AIRFLOW_PROCESS_CONTEXT")
            and not _config_sets_backend(environ))


def _conn_type(conn_type: str) -> str:
    return "postgres" if conn_type == "postgresql" else conn_type.replace("-", "_")


def _hostname(parts) -> str:
    host = unquote(parts.hostname or "")
    if "/" in host:
        host = parts.netloc.rsplit("@", 1)[-1].split(":", 1)[0]
        host = unquote(host)
    return host


def _from_uri(conn_id: str, uri: str) -> EnvConnection | None:
    """``Connection.from_uri`` of the Airflow SDK; ``None`` where it would raise."""
    schemes = uri.count("://")
    if schemes > 2:
        return None
    with_protocol = schemes == 2
    conn_type = urlsplit(uri).scheme
    rest = uri.replace(f"{conn_type}://", "" if with_protocol else "//")
    if with_protocol:
        head = rest.split("://", 1)[0]
        if "@" in head or ":" in head:
            return None
    parts = urlsplit(rest)
    host = _hostname(parts)
    if host and with_protocol:
        host = f"{parts.scheme}://{host}"
    extra = None
    if parts.query:
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        extra = query["__extra__"] if "__extra__" in query else json.dumps(query)
    return EnvConnection(conn_id=conn_id, conn_type=_conn_type(conn_type), host=host,
                         schema=unquote(parts.path[1:]) if parts.path[1:] else parts.path[1:],
                         login=unquote(parts.username) if parts.username else parts.username,
                         password=unquote(parts.password) if parts.password else parts.password,
                         port=parts.port, extra=extra)


def _from_json(conn_id: str, value: str) -> EnvConnection | None:
    """``Connection.from_json`` of the Airflow SDK, for plain values; ``None`` for anything else."""
    kwargs = json.loads(value)
    if not isinstance(kwargs, dict) or set(kwargs) - set(_FIELDS):
        return None
    extra = kwargs.pop("extra", None)
    kwargs["extra"] = (extra if isinstance(extra, str) else json.dumps(extra)) if extra else None
    conn_type = kwargs.pop("conn_type", None)
    kwargs["conn_type"] = _conn_type(conn_type) if conn_type else None
    port = kwargs.pop("port", None)
    kwargs["port"] = int(port) if port else None
    if any(v is not None and not isinstance(v, str) for k, v in kwargs.items() if k != "port"):
        return None
    return EnvConnection(conn_id=conn_id, **kwargs)


def lookup(conn_id: str, environ: Mapping[str, str]) -> EnvConnection | None:
    """The connection ``AIRFLOW_CONN_<ID>`` of ``environ`` defines; ``None``: ask Airflow. Raises
    ``ConnectionNotDefined``."""
    if not applies(environ):
        return None
    name = f"AIRFLOW_CONN_{conn_id.upper()}"
    raw = environ.get(name)
    if raw is None:
        raise ConnectionNotDefined(f"connection {conn_id} is not defined ({name} is not set, and no secrets "
                                   "backend is configured)")
    return parse(conn_id, raw)


def parse(conn_id: str, raw: str) -> EnvConnection | None:
    """``raw`` as Airflow's environment backend reads it; ``None`` where this is unsure (Airflow decides)."""
    value = raw.strip()
    if not value:
        return None
    try:
        conn = _from_json(conn_id, value) if value[0] == "{" else _from_uri(conn_id, value)
        if conn is not None and not isinstance(conn.extra_dejson, dict):
            return None
    except Exception:  # anything odd (a port of 1e400, JSON nested past the recursion limit): Airflow decides
        return None
    return conn


def redis_client(c: EnvConnection):
    """The client ``RedisHook.get_conn`` builds for a connection whose only extra is ``db``."""
    import redis

    password = None if str(c.password).lower() in ("none", "false", "") else c.password
    return redis.Redis(host=c.host, port=c.port, username=c.login, password=password, db=c.extra_dejson.get("db"))


def mysql_config(c: EnvConnection) -> dict:
    """What ``MySqlHook`` (mysqlclient) passes to ``MySQLdb.connect`` for a connection without extras."""
    return {"user": c.login, "passwd": c.password or "", "host": c.host or "localhost", "db": c.schema or "",
            "port": int(c.port) if c.port else 3306}


class MySqlRecords:
    """The part of ``MySqlHook`` the pipeline uses (``get_conn``, ``get_records``), on ``MySQLdb``."""

    log_sql = False

    def __init__(self, config: dict):
        self.config = config

    def get_conn(self):
        import MySQLdb

        return MySQLdb.connect(**self.config)

    def get_records(self, sql: str, parameters=None) -> list:
        """One statement's rows, on a connection of its own (closed after), as ``DbApiHook.get_records``."""
        with closing(self.get_conn()) as conn:
            with closing(conn.cursor()) as cur:
                cur.execute(sql, parameters)
                rows = list(cur.fetchall()) if cur.description is not None else None
            conn.commit()
        return rows
