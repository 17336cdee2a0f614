"""Plain per-user Python loop for CONTRACT §1, the oracle for the vectorised rules.

Written as directly from the contract as possible: no NumPy, one state machine per user.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from itertools import groupby
from pathlib import Path

ACTIONS = ("login", "logout", "get", "post")
_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})$")


def parse_line(line: str) -> tuple[int, int, str] | None:
    """``(epoch seconds, userid, action)`` of a valid line, else None."""
    f = line.split()
    if len(f) != 4:
        return None
    try:
        ts = datetime.strptime(f"{f[0]} {f[1]}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    if len(f[0]) != 10 or len(f[1]) != 8:
        return None
    if not (f[2].isascii() and f[2].isdigit()) or len(f[2]) > 18:
        return None
    a = f[3].lower()
    if a not in ACTIONS:
        return None
    return int((ts - datetime(1970, 1, 1)).total_seconds()), int(f[2]), a


def read_events(paths: Iterable[str | Path]) -> tuple[list[tuple], int, int]:
    """Events ``(userid, t, file_date, line, action)`` of the files, rows_in, rejects."""
    events, rows_in, rejects = [], 0, 0
    for p in paths:
        fday = date.fromisoformat(Path(p).name[:10]).toordinal()
        with open(p, encoding="utf-8", errors="replace", newline="\n") as fh:
            for no, raw in enumerate(fh, 1):
                if no == 1 and raw.startswith("logtime"):
                    continue
                if not raw.strip(" \t\r\n"):
                    continue
                rows_in += 1
                ev = parse_line(raw.rstrip("\n").rstrip("\r"))
                if ev is None:
                    rejects += 1
                else:
                    events.append((ev[1], ev[0], fday, no, ev[2]))
    return events, rows_in, rejects


def user_online(evs: list[tuple[int, str]], win_start: int, win_stop: int,
                min_gap: int = 3, timeout: int = 600, mult: int = 3) -> tuple[int, int, bool]:
    """``(online_seconds, sessions, has_event_in_window)`` of one user's ordered ``(t, action)``."""
    total = sessions = 0
    open_ = False
    sess_time = 0
    marked = False
    prev_t = None

    def close():
        nonlocal total, sessions, sess_time, marked, open_
        if open_:
            total += sess_time * (mult if marked else 1)
            sessions += sess_time > 0
        open_, sess_time, marked = False, 0, False

    for t, a in evs:
        if a == "login":
            close()
            open_ = True
        elif open_:
            gap = t - prev_t
            if gap > timeout:
                close()
            else:
                if gap >= min_gap and win_start <= t < win_stop:
                    sess_time += gap
                if a == "post":
                    marked = True
                if a == "logout":
                    close()
        prev_t = t
    close()
    present = any(win_start <= t < win_stop for t, _ in evs)
    return total, sessions, present


def online_time(events: list[tuple], win_start: int, win_stop: int, **rules) -> dict[int, tuple[int, int]]:
    """``{userid: (online_seconds, sessions)}`` for users with an in-window event."""
    out = {}
    for uid, grp in groupby(sorted(events, key=lambda e: e[:4]), key=lambda e: e[0]):
        secs, n, present = user_online([(e[1], e[4]) for e in grp], win_start, win_stop, **rules)
        if present:
            out[uid] = (secs, n)
    return out


def window_bounds(end: date, window_days: int) -> tuple[int, int]:
    epoch = date(1970, 1, 1)
    return ((end - timedelta(days=window_days - 1) - epoch).days * 86400,
            (end + timedelta(days=1) - epoch).days * 86400)


def oracle_for_dir(log_dir: str | Path, end: date, window_days: int = 7, lookback_days: int = 1):
    """The oracle over a log directory: ``({userid: (seconds, sessions)}, rows_in, rejects)``."""
    days = [end - timedelta(days=k) for k in range(window_days + lookback_days - 1, -1, -1)]
    paths = [Path(log_dir) / f"{d.isoformat()}.log" for d in days]
    events, rows_in, rejects = read_events([p for p in paths if p.exists()])
    return online_time(events, *window_bounds(end, window_days)), rows_in, rejects
