"""Users' online time (CONTRACT §1): vectorised log parsing and session rules.

Pure NumPy, no I/O. Parsing turns a block of whole log lines into event arrays plus
rejected rows; the rules run over one shard's events sorted by
``(userid, logtime, file date, line)`` and give one row per user.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOGIN, LOGOUT, GET, POST = 0, 1, 2, 3
ACTIONS = ("login", "logout", "get", "post")

REASON_FEW = "too few fields"
REASON_MANY = "too many fields"
REASON_DATE = "bad date"
REASON_TIME = "bad time"
REASON_USERID = "bad userid"
REASON_ACTION = "unknown action"

_MAX_USERID_DIGITS = 18
_DIM = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


@dataclass(frozen=True)
class Rules:
    """Rule parameters: gaps shorter than ``min_gap`` add nothing, longer than ``timeout``
    end the session, and a session with a post counts ``post_multiplier`` times."""

    min_gap: int = 3
    timeout: int = 600
    post_multiplier: int = 3


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


def _gather(arr: np.ndarray, start: np.ndarray, width: int) -> np.ndarray:
    idx = start[:, None] + np.arange(width)
    np.minimum(idx, len(arr) - 1, out=idx)
    return arr[idx]


def _all_digits(b: np.ndarray) -> np.ndarray:
    return ((b >= 48) & (b <= 57)).all(axis=1)


def _pack(b: np.ndarray, length: np.ndarray, width: int) -> np.ndarray:
    key = np.zeros(len(b), dtype=np.uint64)
    for k in range(width):
        key |= np.where(k < length, b[:, k].astype(np.uint64) << np.uint64(8 * k), np.uint64(0))
    return key


_ACTION_KEYS = np.array(
    [sum(c << (8 * k) for k, c in enumerate(a.encode())) for a in ACTIONS], dtype=np.uint64
)


def parse_block(data: bytes, line_offset: int = 0, header_allowed: bool = False) -> Parsed:
    """Parse whole lines of a log file.

    ``data`` holds complete lines (a missing final newline is tolerated);
    ``line_offset`` is the number of lines of the file before it; when
    ``header_allowed`` its first line is the file's first line and may be a header.
    """
    if data and not data.endswith(b"\n"):
        data = data + b"\n"
    arr = np.frombuffer(data, dtype=np.uint8)
    n = len(arr)
    nl = np.flatnonzero(arr == 10)
    nlines = len(nl)
    if nlines == 0:
        e64 = np.empty(0, np.int64)
        return Parsed(e64, e64.copy(), np.empty(0, np.int8), np.empty(0, np.int32),
                      np.empty(0, np.int32), [], [], 0, 0)

    tok = np.empty(n + 1, dtype=np.int8)
    tok[0] = 0
    np.greater(arr, 32, out=tok[1:].view(np.bool_))  # not space, tab, CR, LF or other control
    d = np.diff(tok)
    del tok
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    del d
    tok_line = np.searchsorted(nl, starts)
    counts = np.bincount(tok_line, minlength=nlines)
    del tok_line
    first = np.cumsum(counts) - counts

    counted = counts > 0
    if header_allowed and data.startswith(b"logtime"):
        counted[0] = False
    reason = np.zeros(nlines, dtype=np.int8)  # 0 ok, 1..6 reasons
    reason[counted & (counts < 5)] = 1
    reason[counted & (counts > 5)] = 2
    cand = np.flatnonzero(counted & (counts == 5))
    f = first[cand]
    s = [starts[f + k] for k in range(4)]
    ln = [ends[f + k] - s[k] for k in range(4)]

    # date YYYY-MM-DD
    b = _gather(arr, s[0], 10).astype(np.int64)
    dig = b - 48
    ok_date = (ln[0] == 10) & _all_digits(b[:, [0, 1, 2, 3, 5, 6, 8, 9]]) & (b[:, 4] == 45) & (b[:, 7] == 45)
    y = dig[:, 0] * 1000 + dig[:, 1] * 100 + dig[:, 2] * 10 + dig[:, 3]
    mo = dig[:, 5] * 10 + dig[:, 6]
    dd = dig[:, 8] * 10 + dig[:, 9]
    ok_date &= (mo >= 1) & (mo <= 12) & (dd >= 1)
    mo_c = np.clip(mo, 1, 12)
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    dim = _DIM[mo_c - 1] + ((mo_c == 2) & leap)
    ok_date &= dd <= dim
    days = days_from_civil(y, mo_c, np.clip(dd, 1, 31))

    # time HH:MM:SS
    b = _gather(arr, s[1], 8).astype(np.int64)
    dig = b - 48
    ok_time = (ln[1] == 8) & _all_digits(b[:, [0, 1, 3, 4, 6, 7]]) & (b[:, 2] == 58) & (b[:, 5] == 58)
    hh = dig[:, 0] * 10 + dig[:, 1]
    mi = dig[:, 3] * 10 + dig[:, 4]
    ss = dig[:, 6] * 10 + dig[:, 7]
    ok_time &= (hh < 24) & (mi < 60) & (ss < 60)
    logtime = days * 86400 + hh * 3600 + mi * 60 + ss

    # userid: 1..18 decimal digits
    w = _MAX_USERID_DIGITS
    b = _gather(arr, s[2], w)
    inside = np.arange(w) < ln[2][:, None]
    isdig = (b >= 48) & (b <= 57)
    ok_uid = (ln[2] >= 1) & (ln[2] <= w) & (isdig | ~inside).all(axis=1)
    uid = np.zeros(len(cand), dtype=np.int64)
    digv = (b.astype(np.int64) - 48)
    for k in range(w):
        m = inside[:, k]
        uid = np.where(m, uid * 10 + digv[:, k], uid)

    # action, any letter case
    b = _gather(arr, s[3], 6) | np.uint8(0x20)
    key = _pack(b, ln[3], 6)
    act = np.full(len(cand), -1, dtype=np.int8)
    for code, k in enumerate(_ACTION_KEYS):
        act[(key == k) & (ln[3] == len(ACTIONS[code]))] = code
    ok_act = act >= 0

    r = np.zeros(len(cand), dtype=np.int8)
    r[~ok_act] = 6
    r[~ok_uid] = 5
    r[~ok_time] = 4
    r[~ok_date] = 3
    reason[cand] = r
    good = r == 0
    sel = cand[good]

    bad = np.flatnonzero(reason > 0)
    names = (None, REASON_FEW, REASON_MANY, REASON_DATE, REASON_TIME, REASON_USERID, REASON_ACTION)
    line_start = np.concatenate(([0], nl[:-1] + 1))
    raws = [data[line_start[i]:nl[i]].rstrip(b"\r").decode("utf-8", "replace") for i in bad.tolist()]
    return Parsed(
        userid=uid[good],
        logtime=logtime[good],
        action=act[good],
        line=(sel + line_offset + 1).astype(np.int32),
        reject_line=(bad + line_offset + 1).astype(np.int32),
        reject_reason=[names[i] for i in reason[bad].tolist()],
        reject_raw=raws,
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
