"""Users' online time (CONTRACT §1): log parsing and session rules.

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

LOGIN, LOGOUT, GET, POST = 0, 1, 2, 3
ACTIONS = ("login", "logout", "get", "post")

REASON_FEW = "too few fields"
REASON_MANY = "too many fields"
REASON_DATE = "bad date"
REASON_TIME = "bad time"
REASON_USERID = "bad userid"
REASON_ACTION = "unknown action"
_NAMES = (None, REASON_FEW, REASON_MANY, REASON_DATE, REASON_TIME, REASON_USERID, REASON_ACTION)

_MAX_USERID_DIGITS = 18
_DIM = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


@dataclass(frozen=True)
class Rules:
    """Rule parameters: gaps shorter than ``min_gap`` add nothing, longer than ``timeout``
    end the session, and a session with a post counts ``post_multiplier`` times."""

    min_gap: int = conv.MIN_GAP
    timeout: int = conv.TIMEOUT
    post_multiplier: int = conv.POST_MULTIPLIER


@dataclass
class Parsed:
    """Events and rejects of one block of lines (line numbers are 1-based in the file)."""

    userid: np.ndarray  # int64
    logtime: np.ndarray  # int64, seconds since 1970-01-01 (naive, no time zone)
    action: np.ndarray  # int8, index into ACTIONS
    line: np.ndarray  # int32
    reject_line: np.ndarray  # int32
    reject_reason: list[str]
    reject_raw: list[str]
    rows_in: int  # non-blank, non-header lines
    lines: int  # every line of the block


def days_from_civil(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (vectorised)."""
    y = y - (m <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_day(text: bytes) -> int | None:
    """Days since 1970-01-01 of a strict ``YYYY-MM-DD``, else None."""
    if len(text) != 10 or text[4:5] != b"-" or text[7:8] != b"-":
        return None
    y, m, d = text[:4], text[5:7], text[8:]
    if not (y.isdigit() and m.isdigit() and d.isdigit()):
        return None
    y, m, d = int(y), int(m), int(d)
    leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
    if not (1 <= m <= 12 and 1 <= d <= _DIM[m - 1] + (m == 2 and leap)):
        return None
    return int(days_from_civil(np.int64(y), np.int64(m), np.int64(d)))


_PAD = 32
_PAD_BYTES = np.full(_PAD, 32, dtype=np.uint8)
_POW10 = 10 ** np.arange(_MAX_USERID_DIGITS - 1, -1, -1, dtype=np.int64)
_LEN_MASK = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [2**64 - 1], dtype=np.uint64)
_ACTION_KEYS = np.array([int.from_bytes(a.encode(), "little") for a in ACTIONS], dtype=np.uint64)


REJECT_RAW_MAX = 1024  # bytes of a rejected line's text kept whole; a longer line keeps these and its length


def reject_text(data, a: int, b: int) -> str:
    """The raw text kept for the rejected line ``data[a:b]`` (no newline): the line without trailing CRs,
    or, over ``REJECT_RAW_MAX`` bytes, its first ``REJECT_RAW_MAX`` bytes and a note of its length."""
    if b > a and data[b - 1] == 13:
        b -= 1
    if b - a <= REJECT_RAW_MAX:
        return bytes(data[a:b]).rstrip(b"\r").decode("utf-8", "replace")
    head = bytes(data[a:a + REJECT_RAW_MAX]).decode("utf-8", "replace")
    return f"{head}... [{b - a:,} bytes, cut to the first {REJECT_RAW_MAX:,}]"


def _tokens(arr: np.ndarray, low: np.ndarray, nl: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                      np.ndarray]:
    """Token starts and ends in ``arr`` (bytes <= 32 other than control bytes separate), and per line
    (``nl``: its newlines) the index of its first token and its token count."""
    lowv = arr[low]
    tok = np.empty(len(arr) + 1, dtype=np.bool_)
    tok[0] = False
    np.greater(arr, 32, out=tok[1:])
    tok[1 + low[(lowv != 9) & (lowv != 10) & (lowv != 13)]] = True  # other control bytes are not separators
    edges = np.flatnonzero(tok[1:] != tok[:-1])  # token starts and ends alternate; data ends with LF
    del tok
    starts, ends = edges[0::2], edges[1::2]
    # tokens before each line's newline; far fewer lines than tokens to look up
    upto = np.searchsorted(starts, nl)
    first = np.empty(len(nl), dtype=upto.dtype)
    first[0] = 0
    first[1:] = upto[:-1]
    return starts, ends, first, upto - first


def _dates(data: bytes, win8: np.ndarray, s: np.ndarray, ln: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Days since 1970 and validity of the ``YYYY-MM-DD`` tokens starting at padded offsets ``s``: each
    distinct 10-byte value parsed once (a file holds a few dates)."""
    lo = np.ascontiguousarray(win8[s]).view("<u8").ravel()
    hi = np.ascontiguousarray(win8[s + 2]).view("<u8").ravel()
    days = np.zeros(len(s), dtype=np.int64)
    ok = ln == 10
    todo = ok.copy()
    while todo.any():
        i = int(np.argmax(todo))
        same = todo & (lo == lo[i]) & (hi == hi[i])
        v = _civil_day(data[s[i] - _PAD:s[i] - _PAD + 10])
        if v is None:
            ok[same] = False
        else:
            days[same] = v
        todo &= ~same
    return days, ok


def _times(win8: np.ndarray, s: np.ndarray, ln: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seconds into the day and validity of the ``HH:MM:SS`` tokens at padded offsets ``s``."""
    b = win8[s]
    dig = b - np.uint8(48)
    ok = (ln == 8) & (dig[:, [0, 1, 3, 4, 6, 7]] <= 9).all(axis=1) & (b[:, 2] == 58) & (b[:, 5] == 58)
    dig = dig.astype(np.int32)
    hh = dig[:, 0] * 10 + dig[:, 1]
    mi = dig[:, 3] * 10 + dig[:, 4]
    ss = dig[:, 6] * 10 + dig[:, 7]
    ok &= (hh < 24) & (mi < 60) & (ss < 60)
    return hh * 3600 + mi * 60 + ss, ok


def _userids(padded: np.ndarray, s: np.ndarray, ln: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values and validity of the userid tokens (1..18 decimal digits) at padded offsets ``s``, gathered
    right-aligned in windows as wide as the longest."""
    w = int(min(_MAX_USERID_DIGITS, ln.max())) if len(s) else 1
    b = np.lib.stride_tricks.sliding_window_view(padded, w)[s + ln - w]
    inside = np.arange(w - 1, -1, -1) < ln[:, None]
    dig = b - np.uint8(48)
    dig[~inside] = 0
    ok = (ln <= _MAX_USERID_DIGITS) & (dig <= 9).all(axis=1)
    return dig.astype(np.int64) @ _POW10[_MAX_USERID_DIGITS - w:], ok


def _actions(win8: np.ndarray, s: np.ndarray, ln: np.ndarray) -> np.ndarray:
    """Index into ``ACTIONS`` (any letter case) of the tokens at padded offsets ``s``, -1 for none: up to
    8 bytes as one little-endian integer."""
    key = np.ascontiguousarray(win8[s]).view("<u8").ravel()
    key = (key | np.uint64(0x2020202020202020)) & _LEN_MASK[np.minimum(ln, 8)]
    act = np.full(len(s), -1, dtype=np.int8)
    for code, k in enumerate(_ACTION_KEYS):
        act[key == k] = code
    act[ln > 8] = -1
    return act


def _four_fields(data: bytes, arr: np.ndarray, starts, ends, first, cand: np.ndarray):
    """Parse the lines ``cand`` (four tokens each): ``(userid, logtime, action, reason)``, reason 0 when
    the line is valid, else 3 (date), 4 (time), 5 (userid) or 6 (action), the first that fails."""
    f = first[cand]
    s = [starts[f + k] + _PAD for k in range(4)]
    ln = [ends[f + k] + _PAD - s[k] for k in range(4)]
    padded = np.concatenate((_PAD_BYTES, arr, _PAD_BYTES))
    win8 = np.lib.stride_tricks.sliding_window_view(padded, 8)
    days, ok_date = _dates(data, win8, s[0], ln[0])
    secs, ok_time = _times(win8, s[1], ln[1])
    uid, ok_uid = _userids(padded, s[2], ln[2])
    act = _actions(win8, s[3], ln[3])
    r = np.zeros(len(cand), dtype=np.int8)
    r[act < 0] = 6
    r[~ok_uid] = 5
    r[~ok_time] = 4
    r[~ok_date] = 3
    return uid, days * 86400 + secs, act, r


def parse_block(data: bytes, line_offset: int = 0, header_allowed: bool = False) -> Parsed:
    """Parse whole lines of a log file.

    ``data`` holds complete lines (a missing final newline is tolerated);
    ``line_offset`` is the number of lines of the file before it; when
    ``header_allowed`` its first line is the file's first line and may be a header.
    """
    if data and not data.endswith(b"\n"):
        data = data + b"\n"
    arr = np.frombuffer(data, dtype=np.uint8)
    low = np.flatnonzero(arr < 32)
    nl = low[arr[low] == 10]
    nlines = len(nl)
    if nlines == 0:
        e64 = np.empty(0, np.int64)
        return Parsed(e64, e64.copy(), np.empty(0, np.int8), np.empty(0, np.int32),
                      np.empty(0, np.int32), [], [], 0, 0)
    starts, ends, first, counts = _tokens(arr, low, nl)

    counted = counts > 0
    if header_allowed and data.startswith(b"logtime"):
        counted[0] = False
    reason = np.zeros(nlines, dtype=np.int8)  # 0 ok, 1..6 reasons
    reason[counted & (counts < 4)] = 1
    reason[counted & (counts > 4)] = 2
    cand = np.flatnonzero(counted & (counts == 4))
    uid, logtime, act, r = _four_fields(data, arr, starts, ends, first, cand)
    reason[cand] = r
    good = r == 0
    sel = cand[good]

    bad = np.flatnonzero(reason > 0)
    line_start = np.concatenate(([0], nl[:-1] + 1))
    return Parsed(
        userid=uid[good],
        logtime=logtime[good],
        action=act[good],
        line=(sel + line_offset + 1).astype(np.int32),
        reject_line=(bad + line_offset + 1).astype(np.int32),
        reject_reason=[_NAMES[i] for i in reason[bad].tolist()],
        reject_raw=[reject_text(data, line_start[i], nl[i]) for i in bad.tolist()],
        rows_in=int(counted.sum()),
        lines=nlines,
    )


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
