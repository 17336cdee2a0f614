"""Per-day summaries of the online-time rules (CONTRACT §1: "every log is read once").

No I/O. A day's summary holds, per user, what that day's events decide alone, for either state
the user may enter the day in:

* ``first_t``, ``first_act``, ``last_t``: the first event (seconds into the day, action) and the last;
* the *head*: with a session open on entry (and ``first_t`` within the timeout of the previous event,
  ``first_act`` not a login), the events up to the first break continue it: ``head_add`` in-day
  seconds, ``HEAD_POST`` whether one of them is a post, ``HEAD_OPEN`` whether the session is still
  open at the end of the day (no break at all);
* the sessions opened by the day's logins: ``closed_total`` (multiplier applied) and ``closed_count``
  of those that closed within the day, and the *tail* one still open at its end (``TAIL_OPEN``,
  ``tail_add`` seconds, ``TAIL_MARKED``).

Every "seconds" assumes the day lies inside the window; ``combine`` zeroes them for lookback days
(a gap counts only when its later event is in the window), keeping the marks and open sessions.
Summaries need each event's time inside its own file's day (``out_of_day`` says when not); then
``combine`` of the days in order equals ``online_time.online_time`` over all their events.
"""

from __future__ import annotations

import numpy as np

from video_analytics.online_time import LOGIN, LOGOUT, POST, Rules, _fastlog

DEFAULT_RULES = Rules()
HEAD_POST, HEAD_OPEN, TAIL_OPEN, TAIL_MARKED = 1, 2, 4, 8
DAY = 86400

COLUMNS = ("userid", "first_t", "first_act", "last_t", "head_add", "flags", "closed_total", "closed_count",
           "tail_add")
DTYPES = (np.int64, np.int32, np.int8, np.int32, np.int32, np.int8, np.int64, np.int32, np.int32)


def empty() -> dict[str, np.ndarray]:
    """The summary of a day without events (an accepted-missing day's)."""
    return {c: np.empty(0, d) for c, d in zip(COLUMNS, DTYPES, strict=True)}


def out_of_day(logtime: np.ndarray, day_start: int) -> int:
    """How many of ``logtime`` fall outside ``[day_start, day_start + 1 day)``."""
    return int(np.count_nonzero((logtime < day_start) | (logtime >= day_start + DAY)))


def summarize(userid: np.ndarray, logtime: np.ndarray, action: np.ndarray, day_start: int,
              rules: Rules = DEFAULT_RULES) -> dict[str, np.ndarray]:
    """The day's summary of events in file order (``(logtime, line)`` is the rules' order inside one file:
    a stable sort by ``(userid, logtime)`` is done here). Every time must lie in the day."""
    n = len(userid)
    if n == 0:
        return empty()
    order = np.lexsort((logtime, userid))
    uid = np.asarray(userid, np.int64)[order]
    t = np.asarray(logtime, np.int64)[order] - day_start
    act = np.asarray(action, np.int8)[order]

    first = np.empty(n, bool)
    first[0] = True
    np.not_equal(uid[1:], uid[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    ends = np.append(starts[1:], n) - 1
    user = np.cumsum(first) - 1
    nusers = len(starts)
    gap = np.zeros(n, np.int64)
    gap[1:] = t[1:] - t[:-1]
    gap[first] = 0
    is_login = act == LOGIN
    counted = gap >= rules.min_gap

    # a break before i ends the session open before it: a timeout, a logout just before, a login at i
    brk = first.copy()
    brk[1:] |= (gap[1:] > rules.timeout) | (act[:-1] == LOGOUT)
    cbrk = np.cumsum(brk | is_login)
    head = cbrk == cbrk[starts][user]
    head_add = np.bincount(user[head & counted], weights=gap[head & counted], minlength=nusers)
    head_post = np.bincount(user[head & (act == POST)], minlength=nusers) > 0
    head_open = head[ends] & (act[ends] != LOGOUT)
    no_head = act[starts] == LOGIN  # a login first: no head (the carried session closes at once)
    head_add[no_head] = 0
    head_post[no_head] = False
    head_open[no_head] = False

    # sessions opened by the day's logins (as online_time.online_time, one day, all inside the window)
    cb = np.cumsum(brk)
    idx = np.arange(n)
    ll = np.maximum.accumulate(np.where(is_login, idx, -1))
    has = ll >= 0
    llc = np.where(has, ll, 0)
    alive = has & (idx > llc) & (cb == cb[llc])
    sess = np.cumsum(is_login) - 1
    nsess = int(is_login.sum())
    add = alive & counted
    s_time = np.bincount(sess[add], weights=gap[add], minlength=nsess).astype(np.int64)
    s_mark = np.bincount(sess[alive & (act == POST)], minlength=nsess) > 0
    s_user = user[is_login]
    last_login = np.zeros(nsess, bool)
    if nsess:
        last_login[np.append(np.flatnonzero(s_user[1:] != s_user[:-1]), nsess - 1)] = True
    # open at the end: the user's last login, whose session the user's last event is in (or is)
    e = ends[s_user]
    s_open = last_login & ((e == np.flatnonzero(is_login)) | alive[e]) & (act[e] != LOGOUT)
    s_total = np.where(s_mark, s_time * rules.post_multiplier, s_time)
    closed = ~s_open
    closed_total = np.bincount(s_user[closed], weights=s_total[closed], minlength=nusers)
    closed_count = np.bincount(s_user[closed], weights=(s_time[closed] > 0), minlength=nusers)
    tail_open = np.zeros(nusers, bool)
    tail_open[s_user[s_open]] = True
    tail_add = np.zeros(nusers, np.int64)
    tail_add[s_user[s_open]] = s_time[s_open]
    tail_marked = np.zeros(nusers, bool)
    tail_marked[s_user[s_open]] = s_mark[s_open]

    flags = (head_post * HEAD_POST + head_open * HEAD_OPEN + tail_open * TAIL_OPEN
             + tail_marked * TAIL_MARKED).astype(np.int8)
    cols = (uid[starts], t[starts], act[starts], t[ends], head_add, flags, closed_total, closed_count, tail_add)
    return {c: np.asarray(v).astype(d, copy=False) for c, v, d in zip(COLUMNS, cols, DTYPES, strict=True)}


HAVE_FAST = _fastlog is not None and hasattr(_fastlog, "sum_outside")


class StreamingSummary:
    """``summarize`` fed in file order in any number of blocks, with one state per user (C); ``feed``
    returns False once some user's time goes back in the day (then sort: use ``summarize``). Events
    outside the day are counted (``outside``) and left out. Needs ``HAVE_FAST``."""

    def __init__(self, day_start: int, rules: Rules = DEFAULT_RULES, users: int = 0):
        """``users``: how many to expect (sizes the table once; it grows as needed anyway)."""
        self.day_start = day_start
        self._state = _fastlog.sum_new(rules.min_gap, rules.timeout, rules.post_multiplier, users)
        self.ok = True

    def feed(self, userid: np.ndarray, logtime: np.ndarray, action: np.ndarray) -> bool:
        if self.ok and len(userid):
            self.ok = _fastlog.sum_feed(self._state, np.ascontiguousarray(userid, np.int64),
                                        np.ascontiguousarray(logtime, np.int64),
                                        np.ascontiguousarray(action, np.int8), self.day_start) < 0
        return self.ok

    def outside(self) -> int:
        """Events fed whose time is outside the day (left out: such a day has no valid summary)."""
        return _fastlog.sum_outside(self._state)

    def result(self) -> dict[str, np.ndarray]:
        if not self.ok:
            raise RuntimeError("events went back in time for a user: sort them and use summarize()")
        cap = _fastlog.rules_users(self._state)
        cols = [np.empty(cap, d) for d in DTYPES]
        k = _fastlog.sum_result(self._state, *cols)
        order = np.argsort(cols[0][:k])  # userids are distinct: no need of a stable sort
        return {c: v[:k][order] for c, v in zip(COLUMNS, cols, strict=True)}


class Combiner:
    """The rules' state per user, advanced one day's summary at a time (days in order, each once). With
    the accelerator (``fast``), C merge walks over the window's sorted userids; else NumPy."""

    def __init__(self, rules: Rules = DEFAULT_RULES, fast: bool | None = None):
        self.rules = rules
        self.fast = HAVE_FAST if fast is None else fast
        self._days: list[tuple[int, bool, dict]] = []
        self._last: int | None = None

    def add(self, summary: dict[str, np.ndarray], day_start: int, in_window: bool) -> None:
        """The next day (later than every day added so far)."""
        if self._last is not None and day_start <= self._last:
            raise ValueError("days must be added in order, each once")
        self._last = day_start
        if len(summary["userid"]):
            self._days.append((day_start, in_window, summary))

    def result(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(userid, online_seconds, sessions)`` of users with an event in a window day, by userid."""
        if not self._days:
            e = np.empty(0, np.int64)
            return e, e.copy(), e.copy()
        if self.fast:
            return self._result_fast()
        users, inv = np.unique(np.concatenate([s["userid"] for _, _, s in self._days]), return_inverse=True)
        st = _State(len(users), self.rules)
        pos = 0
        for day_start, inw, s in self._days:
            k = len(s["userid"])
            st.step(inv[pos:pos + k], s, day_start, inw)
            pos += k
        st.close(np.flatnonzero(st.open))
        keep = st.present
        return users[keep], st.total[keep], st.sessions[keep]

    def _result_fast(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r = self.rules
        users = np.empty(0, np.int64)
        for _, _, s in self._days:
            out = np.empty(len(users) + len(s["userid"]), np.int64)
            users = out[:_fastlog.merge_union(users, np.ascontiguousarray(s["userid"], np.int64), out)]
        state = np.zeros((len(users), 5), np.int64)  # previous event, open session's seconds, total, sessions, bits
        for day_start, inw, s in self._days:
            cols = [np.ascontiguousarray(s[c], d) for c, d in zip(COLUMNS, DTYPES, strict=True)]
            _fastlog.comb_feed(users, state, *cols, day_start, inw, r.min_gap, r.timeout, r.post_multiplier)
        bits, cur = state[:, 4], state[:, 1]
        is_open = (bits & 1) > 0
        total = state[:, 2] + np.where(is_open, np.where(bits & 2, cur * r.post_multiplier, cur), 0)
        sessions = state[:, 3] + (is_open & (cur > 0))
        keep = (bits & 4) > 0
        return users[keep], total[keep], sessions[keep]


class _State:
    def __init__(self, n: int, rules: Rules):
        self.rules = rules
        self.open = np.zeros(n, bool)
        self.marked = np.zeros(n, bool)
        self.present = np.zeros(n, bool)
        self.prev = np.zeros(n, np.int64)
        self.cur = np.zeros(n, np.int64)
        self.total = np.zeros(n, np.int64)
        self.sessions = np.zeros(n, np.int64)

    def close(self, ix: np.ndarray) -> None:
        cur = self.cur[ix]
        self.total[ix] += np.where(self.marked[ix], cur * self.rules.post_multiplier, cur)
        self.sessions[ix] += cur > 0
        self.open[ix] = False
        self.cur[ix] = 0
        self.marked[ix] = False

    def step(self, ix: np.ndarray, s: dict, day_start: int, inw: bool) -> None:
        r = self.rules
        flags = s["flags"]
        ft = day_start + s["first_t"].astype(np.int64)
        gap = ft - self.prev[ix]
        was_open = self.open[ix]
        cont = was_open & (s["first_act"] != LOGIN) & (gap <= r.timeout)
        self.close(ix[was_open & ~cont])
        c = ix[cont]
        if len(c):
            if inw:
                g = gap[cont]
                self.cur[c] += np.where(g >= r.min_gap, g, 0) + s["head_add"][cont]
            self.marked[c] |= (flags[cont] & HEAD_POST) > 0
            self.close(c[(flags[cont] & HEAD_OPEN) == 0])
        fresh = ~(cont & ((flags & HEAD_OPEN) > 0))  # not still in the session carried into the day
        f = ix[fresh]
        if inw:
            self.total[f] += s["closed_total"][fresh]
            self.sessions[f] += s["closed_count"][fresh]
        self.open[f] = (flags[fresh] & TAIL_OPEN) > 0
        self.cur[f] = s["tail_add"][fresh] if inw else 0
        self.marked[f] = (flags[fresh] & TAIL_MARKED) > 0
        self.prev[ix] = day_start + s["last_t"].astype(np.int64)
        if inw:
            self.present[ix] = True


def combine(days: list[tuple[dict, int, bool]], rules: Rules = DEFAULT_RULES, fast: bool | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(userid, online_seconds, sessions)`` of ``[(summary, day_start, in_window)]`` in day order."""
    c = Combiner(rules, fast)
    for s, start, inw in days:
        c.add(s, start, inw)
    return c.result()
