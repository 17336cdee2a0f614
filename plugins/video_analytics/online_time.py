"""Users' online time (CONTRACT §1): log parsing (``video_analytics.log_parse``, re-exported) and session rules.

No I/O. Parsing turns a block of whole log lines into event arrays plus rejected rows; the
rules run over one shard's events sorted by ``(userid, logtime, file date, line)`` and give one
row per user. The NumPy code is the reference; the optional C accelerator (``_fastlog.c``, see
the end of this module) parses in one pass (``parse_block_fast``) and runs the rules over events
in file order with one state per user (``StreamingRules``), with identical results.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from video_analytics import conventions as conv
from video_analytics.log_parse import (  # noqa: F401 - re-exported: parsing is part of the online-time core
    _NAMES,
    ACTIONS,
    GET,
    LOGIN,
    LOGOUT,
    POST,
    REASON_ACTION,
    REASON_DATE,
    REASON_FEW,
    REASON_MANY,
    REASON_TIME,
    REASON_USERID,
    REJECT_RAW_MAX,
    Parsed,
    days_from_civil,
    parse_block,
    reject_text,
)


@dataclass(frozen=True)
class Rules:
    """Rule parameters: gaps shorter than ``min_gap`` add nothing, longer than ``timeout``
    end the session, and a session with a post counts ``post_multiplier`` times."""

    min_gap: int = conv.MIN_GAP
    timeout: int = conv.TIMEOUT
    post_multiplier: int = conv.POST_MULTIPLIER


_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def shard_of(userid: np.ndarray, shards: int) -> np.ndarray:
    """Stable shard number of each userid (splitmix64 finaliser, then modulo)."""
    x = userid.astype(np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _MIX1
        x = (x ^ (x >> np.uint64(27))) * _MIX2
        x = x ^ (x >> np.uint64(31))
    return (x % np.uint64(shards)).astype(np.int32)


def shard_split(shard: np.ndarray, shards: int) -> tuple[np.ndarray, np.ndarray]:
    """``(order, bounds)``: a stable permutation grouping rows by shard, and each shard's
    ``[bounds[i], bounds[i + 1])`` slice of it."""
    # NumPy radix-sorts 8-bit keys, several times faster than int32
    order = np.argsort(shard.astype(np.uint8) if shards <= 256 else shard, kind="stable")
    bounds = np.concatenate(([0], np.cumsum(np.bincount(shard, minlength=shards))))
    return order, bounds


def order_by_user_time(uid: np.ndarray, lt: np.ndarray) -> np.ndarray:
    """Stable permutation ordering rows by ``(userid, logtime)``.

    When the ``(userid, logtime, row)`` triple packs into 63 bits (it does for realistic
    ids and a window of days) one unstable sort of packed keys replaces ``np.lexsort``;
    the row number in the low bits keeps equal keys in their input order.
    """
    n = len(uid)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    umin, umax = int(uid.min()), int(uid.max())
    if n > 1 and bool(np.all(lt[1:] >= lt[:-1])):
        tmin, span = 0, 1  # already in time order: sorting by userid alone is enough
    else:
        tmin, span = int(lt.min()), int(lt.max()) - int(lt.min()) + 1
    row_bits = max(1, (n - 1).bit_length())
    if ((umax - umin + 1) * span - 1).bit_length() + row_bits > 63:
        return np.lexsort((lt, uid))
    key = uid - umin
    if span > 1:
        key *= span
        key += lt - tmin
    key <<= row_bits
    key |= np.arange(n, dtype=np.int64)
    key.sort()
    key &= (1 << row_bits) - 1
    return key


def users_in_window(sorted_uid: np.ndarray, lt: np.ndarray, window_start: int, window_end: int) -> int:
    """Distinct users with an event in ``[window_start, window_end)``; ``sorted_uid`` is sorted."""
    in_win = sorted_uid[(lt >= window_start) & (lt < window_end)]
    return int(len(in_win) > 0) + int(np.count_nonzero(in_win[1:] != in_win[:-1]))


_EPOCH = dt.date(1970, 1, 1)


def window_bounds(end: dt.date, window_days: int) -> tuple[int, int]:
    """``[start, stop)`` of the window ending on ``end`` in epoch seconds."""
    start = (end - dt.timedelta(days=window_days - 1) - _EPOCH).days * 86400
    return start, (end + dt.timedelta(days=1) - _EPOCH).days * 86400


def window_dates(end: dt.date, window_days: int, lookback_days: int) -> tuple[list[dt.date], list[dt.date]]:
    """``(lookback days, window days)`` in day order."""
    if window_days < 1 or lookback_days < 0:
        raise ValueError(f"window_days must be >= 1 and lookback_days >= 0 (got {window_days}, {lookback_days})")
    window = [end - dt.timedelta(days=k) for k in range(window_days - 1, -1, -1)]
    lookback = [window[0] - dt.timedelta(days=k) for k in range(lookback_days, 0, -1)]
    return lookback, window


def epoch_day(day: dt.date) -> int:
    """Days since 1970-01-01."""
    return (day - _EPOCH).days


def sort_order(userid: np.ndarray, logtime: np.ndarray, fileday: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Permutation ordering events by (userid, logtime, file date, line)."""
    return np.lexsort((line, fileday, logtime, userid))


def online_time(
    userid: np.ndarray,
    logtime: np.ndarray,
    action: np.ndarray,
    window_start: int,
    window_end: int,
    rules: Rules = Rules(),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-user online time of events already sorted by (userid, logtime, file date, line).

    The window is ``[window_start, window_end)`` in epoch seconds. Returns
    ``(userid, online_seconds, sessions)`` for every user with an event in the window,
    sorted by userid.
    """
    n = len(userid)
    if n == 0:
        e = np.empty(0, np.int64)
        return e, e.copy(), e.copy()
    uid = np.asarray(userid, dtype=np.int64)
    t = np.asarray(logtime, dtype=np.int64)
    act = np.asarray(action)

    same = np.empty(n, dtype=bool)
    same[0] = False
    np.equal(uid[1:], uid[:-1], out=same[1:])
    gap = np.zeros(n, dtype=np.int64)
    gap[1:] = t[1:] - t[:-1]

    is_login = act == LOGIN
    # a break at i ends a session before event i: a timeout or a logout just before
    brk = np.zeros(n, dtype=bool)
    brk[1:] = (gap[1:] > rules.timeout) | (act[:-1] == LOGOUT)
    brk |= ~same
    cbrk = np.cumsum(brk)

    idx = np.arange(n)
    last_login = np.maximum.accumulate(np.where(is_login, idx, -1))
    has_login = last_login >= 0
    ll = np.where(has_login, last_login, 0)
    alive = has_login & (idx > ll) & (cbrk == cbrk[ll])  # in the session opened at ll

    in_win = (t >= window_start) & (t < window_end)
    add = alive & in_win & (gap >= rules.min_gap)
    session = np.cumsum(is_login) - 1  # session number of its login, for alive events
    nsess = int(is_login.sum())
    sess_time = np.bincount(session[add], weights=gap[add], minlength=nsess).astype(np.int64)
    marked = np.bincount(session[alive & (act == POST)], minlength=nsess) > 0
    sess_total = np.where(marked, sess_time * rules.post_multiplier, sess_time)

    user_idx = np.cumsum(~same) - 1
    nusers = int(user_idx[-1]) + 1
    login_user = user_idx[is_login]
    online = np.bincount(login_user, weights=sess_total, minlength=nusers).astype(np.int64)
    sessions = np.bincount(login_user, weights=(sess_time > 0), minlength=nusers).astype(np.int64)
    present = np.bincount(user_idx[in_win], minlength=nusers) > 0
    users = uid[~same]
    return users[present], online[present], sessions[present]


# --- the optional C accelerator (video_analytics/_fastlog.c) ---------------------------------

try:
    from video_analytics import _fastlog
except ImportError:  # built without a C compiler: the NumPy code above does everything
    _fastlog = None

HAVE_FAST = _fastlog is not None


def parse_block_fast(data, line_offset: int = 0, header_allowed: bool = False) -> Parsed:
    """``parse_block`` in one C pass (identical results); ``data`` is any bytes-like object
    (a ``memoryview`` of an ``mmap`` avoids a copy). Needs ``HAVE_FAST``."""
    cap = len(data) // 25 + 1
    uid, lt = np.empty(cap, np.int64), np.empty(cap, np.int64)
    act, line = np.empty(cap, np.int8), np.empty(cap, np.int32)
    n, rej, rows_in, lines = _fastlog.parse(data, line_offset, header_allowed, uid, lt, act, line)
    r = np.frombuffer(rej, dtype=np.int64).reshape(-1, 4)
    return Parsed(
        userid=uid[:n].copy() if n < cap // 2 else uid[:n],
        logtime=lt[:n], action=act[:n], line=line[:n],
        reject_line=(r[:, 0] + line_offset + 1).astype(np.int32),
        reject_reason=[_NAMES[i] for i in r[:, 3].tolist()],
        reject_raw=[reject_text(data, a, b) for a, b in r[:, 1:3].tolist()],
        rows_in=rows_in, lines=lines,
    )


def parse_any(data, line_offset: int = 0, header_allowed: bool = False) -> Parsed:
    """``parse_block_fast`` when the accelerator is built, else ``parse_block``."""
    if HAVE_FAST:
        return parse_block_fast(data, line_offset, header_allowed)
    return parse_block(bytes(data), line_offset, header_allowed)


def split_by_shard(userid: np.ndarray, logtime: np.ndarray, action: np.ndarray, shards: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(userid, logtime, action, bounds)`` grouped by ``shard_of(userid, shards)``, rows in their
    order within a shard; shard i is ``[bounds[i], bounds[i + 1])``. One C pass when built."""
    if not HAVE_FAST:
        order, bounds = shard_split(shard_of(userid, shards), shards)
        return userid[order], logtime[order], action[order], bounds.astype(np.int64)
    n = len(userid)
    u, t, a = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int8)
    bounds = np.empty(shards + 1, np.int64)
    _fastlog.split(np.ascontiguousarray(userid, np.int64), np.ascontiguousarray(logtime, np.int64),
                   np.ascontiguousarray(action, np.int8), shards, u, t, a, bounds)
    return u, t, a, bounds


class StreamingRules:
    """The rules fed in file order, with no sort: one state per user (C hash table).

    Events go in ``(file date, line)`` order, in as many ``feed`` calls as wanted. For a user
    whose times never go back that order *is* the rules' ``(logtime, file date, line)`` order,
    so the results equal ``online_time`` over the sorted events. ``feed`` returns False as
    soon as some user's time goes back (the state is then unusable: sort and use
    ``online_time``). Needs ``HAVE_FAST``.
    """

    def __init__(self, window_start: int, window_end: int, rules: Rules = Rules()):
        self._state = _fastlog.rules_new(window_start, window_end, rules.min_gap, rules.timeout,
                                         rules.post_multiplier)
        self.ok = True

    def feed(self, userid: np.ndarray, logtime: np.ndarray, action: np.ndarray) -> bool:
        if self.ok and len(userid):
            self.ok = _fastlog.rules_feed(self._state, np.ascontiguousarray(userid, np.int64),
                                          np.ascontiguousarray(logtime, np.int64),
                                          np.ascontiguousarray(action, np.int8)) < 0
        return self.ok

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(userid, online_seconds, sessions)`` of the users with an event in the window, by userid."""
        if not self.ok:
            raise RuntimeError("events went back in time for a user: sort them and use online_time()")
        cap = _fastlog.rules_users(self._state)
        u, o, s = np.empty(cap, np.int64), np.empty(cap, np.int64), np.empty(cap, np.int64)
        k = _fastlog.rules_result(self._state, u, o, s)
        order = np.argsort(u[:k], kind="stable")
        return u[:k][order], o[:k][order], s[:k][order]
