"""One run at a time per day: a lease in Redis with an owner and an expiry, renewed while held.

Every stage of a day's plays (ingest, rollup, publish, verify, cleanup) runs under the day's
lease, whether Airflow or the CLI runs it, so the same day run twice at once cannot interleave.
The lease is redis-py's ``Lock`` (``SET NX PX`` with a token; renewal and release only by the
token's holder), with the holder named in the token. A holder that dies (kill -9) stops renewing
and its lease expires after ``ttl`` seconds.

A holder that *lost* its lease (it expired, or was taken over) must not commit: each stage calls
``ensure_held()`` right before it writes its final output, and gets ``LeaseLost`` (transient: the
task is retried) when any lease it runs under is no longer its own.
"""

from __future__ import annotations

import contextvars
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager

from redis.exceptions import LockError, LockNotOwnedError
from redis.lock import Lock

from include.settings import lease_ttl_seconds
from video_analytics.conventions import TOTALS_LEASE, lease_key

LEASE_TTL = lease_ttl_seconds()


class DayBusy(RuntimeError):
    """Another run holds the day's lease."""


class LeaseLost(RuntimeError):
    """The lease a stage runs under expired or was taken over before the stage committed."""


class Lease:
    """A held lease: its Redis key, its owner token and the ``Lock`` that holds it."""

    def __init__(self, lock: Lock, owner: str, ttl: int):
        self.lock, self.owner, self.ttl = lock, owner, ttl
        self.key = lock.name
        self.lost = threading.Event()  # set by the renewer when a renewal found the lease gone
        self.confirmed = time.monotonic()  # when Redis last showed the lease as ours

    def check(self, within: float = 0.0) -> None:
        """``LeaseLost`` unless the lease is still this holder's: one GET, unless Redis confirmed it less
        than ``within`` seconds ago."""
        if not self.lost.is_set() and time.monotonic() - self.confirmed < within:
            return
        if not self.lost.is_set() and self.lock.owned():
            self.confirmed = time.monotonic()
            return
        self.lost.set()
        raise LeaseLost(f"lost the lease {self.key} (owner {self.owner}): it expired or was taken over "
                        f"(VIDEO_LEASE_TTL_SECONDS={self.ttl}); the stage stopped before committing "
                        "and will be retried")


_HELD: contextvars.ContextVar[tuple[Lease, ...]] = contextvars.ContextVar("video_leases", default=())


def held() -> tuple[Lease, ...]:
    """The leases the current stage runs under (innermost last)."""
    return _HELD.get()


def ensure_held(within: float = 0.0) -> None:
    """Raise ``LeaseLost`` when a lease the current stage runs under is no longer its own; call it right
    before a commit (final output, publish, fold). ``within``: trust a confirmation that recent (a stage
    committing in many small steps). No lease held (a direct call, a test): nothing to do."""
    for lease in _HELD.get():
        lease.check(within)


def _renew(lease: Lease, stop: threading.Event) -> None:
    while not stop.wait(max(1.0, lease.ttl / 3)):
        try:
            lease.lock.reacquire()
            lease.confirmed = time.monotonic()
        except LockNotOwnedError:  # expired or taken over: the stage stops at its next ensure_held()
            lease.lost.set()
            return
        except Exception:  # Redis unreachable for now: try again; ensure_held() decides at the commit
            continue


@contextmanager
def day_lease(redis, day: str, stage: str, ttl: int = LEASE_TTL, wait: float = 0.0):
    """Hold ``video_lease_<day>`` for the block; ``DayBusy`` (naming the holder) when it is taken, at
    once or, with ``wait``, after trying for that many seconds. Yields the ``Lease``."""
    key = lease_key(day)
    owner = f"{socket.gethostname()}:{os.getpid()}:{stage}:{uuid.uuid4().hex[:8]}"
    # thread_local=False: the renewer thread renews with the token the stage's thread acquired
    lock = Lock(redis, key, timeout=ttl, sleep=0.1, thread_local=False, raise_on_release_error=False)
    if not lock.acquire(blocking=wait > 0, blocking_timeout=wait if wait > 0 else None, token=owner):
        holder, left = redis.get(key), redis.ttl(key)
        raise DayBusy(f"the plays of {day} are being processed by {holder!s} (Redis key {key}, "
                      f"expires in {left} s); run again later")
    lease = Lease(lock, owner, ttl)
    stop = threading.Event()
    keeper = threading.Thread(target=_renew, args=(lease, stop), name=f"lease-{day}", daemon=True)
    keeper.start()
    token = _HELD.set((*_HELD.get(), lease))
    try:
        yield lease
    finally:
        _HELD.reset(token)
        stop.set()
        keeper.join(timeout=5)
        try:
            lock.release()  # only if still ours (redis-py checks the token)
        except LockError:
            pass


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
    with day_lease(redis, TOTALS_LEASE, stage, wait=wait) as lease:
        yield lease


def exclusive(redis, day: str, stage: str, fn, /, *args, **kwargs):
    """``fn(*args, **kwargs)`` under the day's lease."""
    with day_lease(redis, day, stage):
        return fn(*args, **kwargs)
