"""Connection failures as one line naming the connection (never its secret), and whether a retry
may succeed: what the tasks and the CLI do with a driver's error."""

from __future__ import annotations

from include.settings import (
    MONGO_CONN_ID,
    MYSQL_CONN_ID,
    REDIS_CONN_ID,
    _env_value,
    _redact,
    describe_connection,
)

_DRIVERS = {"redis": REDIS_CONN_ID, "MySQLdb": MYSQL_CONN_ID, "mysql": MYSQL_CONN_ID, "pymongo": MONGO_CONN_ID}
# MySQL client errors that end with the server still there: can't connect (2002, 2003), gone away (2006),
# lost (2013), lost while reading (2055), too many connections (1040), lock wait (1205), deadlock (1213)
_MYSQL_TRANSIENT = {1040, 1205, 1213, 2002, 2003, 2006, 2013, 2055}


class ConnectionFailed(ConnectionError):
    """A driver's error on one of the connections, as one line naming it; ``transient`` when a retry
    may succeed (a timeout, a refused or lost connection)."""

    def __init__(self, message: str, transient: bool):
        super().__init__(message)
        self.transient = transient


def is_transient(exc: BaseException) -> bool:
    """A timeout or a refused or lost connection (of a driver or of the OS): worth a retry."""
    if isinstance(exc, ConnectionFailed):
        return exc.transient
    top = type(exc).__module__.split(".")[0]
    if top == "redis":
        from redis.exceptions import AuthenticationError, AuthorizationError
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        return isinstance(exc, RedisTimeoutError | RedisConnectionError) and not isinstance(
            exc, AuthenticationError | AuthorizationError)
    if top == "MySQLdb":
        return bool(exc.args) and exc.args[0] in _MYSQL_TRANSIENT
    if top == "pymongo":
        from pymongo.errors import AutoReconnect, ExecutionTimeout, WTimeoutError

        return isinstance(exc, AutoReconnect | ExecutionTimeout | WTimeoutError)
    return isinstance(exc, TimeoutError | ConnectionError)


def connection_failure(exc: BaseException) -> ConnectionFailed | None:
    """A driver's (Redis, MySQL, MongoDB) error as one line naming the connection, ``None`` for any other."""
    conn_id = _DRIVERS.get(type(exc).__module__.split(".")[0])
    if conn_id is None:
        return None
    first = (str(exc).strip().splitlines() or [""])[0]
    message = _redact(f"connection {describe_connection(conn_id)} failed: {type(exc).__name__}: {first}",
                      _env_value(conn_id))
    return ConnectionFailed(message, is_transient(exc))
