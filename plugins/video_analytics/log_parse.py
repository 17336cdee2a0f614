"""Log parsing (CONTRACT §1): a block of whole log lines into event arrays plus rejected rows.

No I/O. The NumPy reference; ``video_analytics.online_time`` re-exports it, with the C accelerator's
one-pass parser (``parse_block_fast``), which gives identical results.
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
_NAMES = (None, REASON_FEW, REASON_MANY, REASON_DATE, REASON_TIME, REASON_USERID, REASON_ACTION)

_MAX_USERID_DIGITS = 18
_DIM = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


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
