"""One run at a time per day: a lease in Redis with an owner and an expiry, renewed while held.

Every stage of a day's plays (ingest, rollup, publish, verify, cleanup) runs under the day's
lease, whether Airflow or the CLI runs it, so the same day run twice at once cannot interleave.
A holder that dies (kill -9) stops renewing and its lease expires after ``ttl`` seconds.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager

from video_analytics.conventions import TOTALS_LEASE, lease_key

LEASE_TTL = int(os.environ.get("VIDEO_LEASE_TTL_SECONDS", "60"))

_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_RENEW = ("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) "
          "end return 0")


class DayBusy(RuntimeError):
    """Another run holds the day's lease."""


@contextmanager
def day_lease(redis, day: str, stage: str, ttl: int = LEASE_TTL, wait: float = 0.0):
    """Hold ``video_lease_<day>`` for the block; ``DayBusy`` (naming the holder) when it is taken, at
    once or, with ``wait``, after trying for that many seconds."""
    key = lease_key(day)
    owner = f"{socket.gethostname()}:{os.getpid()}:{stage}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + wait
    while not (got := redis.set(key, owner, nx=True, ex=ttl)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not got:
        holder, left = redis.get(key), redis.ttl(key)
        raise DayBusy(f"the plays of {day} are being processed by {holder!s} (Redis key {key}, "
                      f"expires in {left} s); run again later")
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(max(1.0, ttl / 3)):
            try:
                redis.eval(_RENEW, 1, key, owner, ttl)
            except Exception:  # a renewal that fails lets the lease expire; the stage itself goes on
                pass

    keeper = threading.Thread(target=renew, name=f"lease-{day}", daemon=True)
    keeper.start()
    try:
        yield owner
    finally:
        stop.set()
        keeper.join(timeout=5)
        redis.eval(_RELEASE, 1, key, owner)


_LOCAL = threading.Lock()


@contextmanager
def totals_lease(redis, stage: str, wait: float = 600.0):
    """The lease on the running totals (``video_lease_totals``): one fold, stat publish or totals check
    at a time, across days; waits up to ``wait`` seconds for another day's to end. Without Redis
    (``None``: single-process tools and tests) a process-local lock."""
    if redis is None:
        with _LOCAL:
            yield None
        return
    with day_lease(redis, TOTALS_LEASE, stage, wait=wait) as owner:
        yield owner


def exclusive(redis, day: str, stage: str, fn, /, *args, **kwargs):
    """``fn(*args, **kwargs)`` under the day's lease."""
    with day_lease(redis, day, stage):
        return fn(*args, **kwargs)
