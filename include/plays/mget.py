"""``K_S``/``K_J``/``K_z1`` of a chunk's keys from Redis as Arrow arrays (``ingest_plays`` pass 1).

One pipeline of three ``MGET`` s per batch of keys, as before, but the replies are read off the connection's
socket straight into Arrow buffers by the C reader (``video_analytics.play_fast.resp_mget``): no Python
object per value, and no second copy into Arrow (redis-py's pipeline made three million ``bytes`` objects for
a 1M-play day, which were then copied again into the snapshot's arrays). Where that is not possible (no C
extension, a connection class without a plain socket) redis-py's pipeline does it, with the same result.
"""

from __future__ import annotations

import logging

import pyarrow as pa

from video_analytics import play_fast

log = logging.getLogger(__name__)

SUFFIXES = ("_S", "_J", "_z1")
_RECV_MIN = 1 << 22  # first receive buffer (grows by doubling, kept for the process's next batch)
_RECV_KEEP = 1 << 26  # a buffer grown past this (a batch of huge values) is not kept
_BUF: list[bytearray] = []


def _buffer(at_least: int) -> bytearray:
    if not _BUF or len(_BUF[0]) < at_least:
        _BUF[:] = [bytearray(max(at_least, _RECV_MIN))]
    return _BUF[0]


def _array(reply) -> pa.Array:
    from redis.exceptions import ResponseError

    if reply[0] == "err":
        raise ResponseError(reply[1].decode("utf-8", "replace"))
    n, nulls, valid, offsets, data = reply
    typ = pa.binary() if len(offsets) == 4 * (n + 1) else pa.large_binary()
    return pa.Array.from_buffers(typ, n, [pa.py_buffer(valid) if nulls else None,
                                                        pa.py_buffer(offsets), pa.py_buffer(data)], nulls)


def _read_replies(conn, count: int) -> list[pa.Array]:
    """``count`` MGET replies from ``conn``'s socket."""
    sock = conn._sock  # noqa: SLF001 - the replies are read here, not by redis-py's parser
    buf = _buffer(_RECV_MIN)
    filled = 0
    state = play_fast.resp_state()  # each receive's bytes are scanned once
    while True:
        if filled == len(buf):
            grown = _buffer(2 * len(buf))
            grown[:filled] = buf[:filled]
            buf = grown
        got = sock.recv_into(memoryview(buf)[filled:])
        if not got:
            raise ConnectionError("the Redis server closed the connection")
        filled += got
        out = play_fast.resp_mget(buf, 0, filled, count, state)
        if out is not None:
            if len(buf) > _RECV_KEEP:
                _BUF.clear()
            replies, end = out
            if end != filled:
                raise ValueError("more bytes than the MGET replies")
            return [_array(r) for r in replies]


def _fetch_socket(raw, packed: list[bytes], count: int) -> list[pa.Array] | None:
    """The ``count`` replies (arrays of bulk strings: MGET, LRANGE) to the ``packed`` commands, through a pooled
    connection's socket; None when the connection has no plain socket."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    pool = raw.connection_pool
    conn = pool.get_connection()
    try:
        if getattr(conn, "_sock", None) is None or not hasattr(conn._sock, "recv_into"):  # noqa: SLF001
            return None
        conn.send_packed_command(packed, check_health=False)
        try:
            return _read_replies(conn, count)
        except TimeoutError as exc:  # socket.timeout
            raise RedisTimeoutError(f"Timeout reading from {conn.host if hasattr(conn, 'host') else 'redis'}") from exc
        except OSError as exc:
            raise RedisConnectionError(f"Error reading from Redis: {exc}") from exc
    except BaseException:
        conn.disconnect()  # a half-read reply must not reach the next command
        raise
    finally:
        pool.release(conn)


def lrange_array(raw, name: str, start: int, stop: int) -> pa.Array:
    """``LRANGE name start stop`` as an Arrow ``binary`` array: read off the socket by the C reader (no Python
    object per entry), or through redis-py where that is not possible."""
    args = [b"LRANGE", name.encode(), b"%d" % start, b"%d" % stop]
    packed = b"*4\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
    got = _fetch_socket(raw, [packed], 1) if play_fast.HAVE_FAST else None
    if got is None:
        return pa.array(raw.lrange(name, start, stop), pa.binary())
    arr = got[0]
    return arr if arr.type == pa.binary() else arr.cast(pa.binary())


def _fetch_pipeline(raw, keys: list[str]) -> list[pa.Array]:
    p = raw.pipeline(transaction=False)
    for s in SUFFIXES:
        p.mget([k + s for k in keys])
    return [pa.array(v, pa.binary()) for v in p.execute()]


def fetch_arrays(raw, keys: list[str], batch: int, rt, attempts: int = 3) -> list[pa.Array]:
    """``K_S``, ``K_J`` and ``K_z1`` of ``keys`` (``pa.binary()`` arrays, null where missing): one round trip
    per ``batch`` keys. Reads only, so a batch that times out (e.g. while the server is busy with another
    client's FLUSHDB) is sent again, ``attempts`` times in all."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    fast = play_fast.HAVE_FAST
    cols: list[list[pa.Array]] = [[] for _ in SUFFIXES]
    for at in range(0, len(keys), batch):
        part = keys[at: at + batch]
        for attempt in range(attempts):
            try:
                mgets = [play_fast.resp_mget_command(part, s.encode()) for s in SUFFIXES]
                got = _fetch_socket(raw, mgets, len(SUFFIXES)) if fast else None
                if got is None:
                    fast = False
                    got = _fetch_pipeline(raw, part)
                rt()
                break
            except (RedisTimeoutError, RedisConnectionError):
                if attempt == attempts - 1:
                    raise
                log.warning("ingest_plays: MGET pipeline timed out, sending it again")
        for c, a in zip(cols, got, strict=True):
            c.append(a)
    return [_binary(c) for c in cols]


def _binary(parts: list[pa.Array]) -> pa.ChunkedArray:
    """The batches as one ``pa.binary()`` column (32-bit offsets), one chunk per batch (no copy)."""
    if not parts:
        return pa.chunked_array([], pa.binary())
    try:
        return pa.chunked_array([p if p.type == pa.binary() else p.cast(pa.binary()) for p in parts], pa.binary())
    except (pa.ArrowInvalid, pa.ArrowCapacityError):  # a batch past 2 GiB: split as pa.array splits it
        return pa.chunked_array([c for p in parts for c in _split(p)], pa.binary())


def _split(arr: pa.Array) -> list[pa.Array]:
    out = pa.array(arr.to_pylist(), pa.binary())
    return out.chunks if isinstance(out, pa.ChunkedArray) else [out]
