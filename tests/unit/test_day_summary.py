"""Per-day summaries combined over a window equal the rules over all the window's events (CONTRACT §1)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.online_oracle import user_online
from tests.support.online_oracle import window_bounds as oracle_bounds
from video_analytics import day_summary as ds
from video_analytics import online_time as core

END = date(2014, 1, 31)
A = {"login": core.LOGIN, "logout": core.LOGOUT, "get": core.GET, "post": core.POST}
NAMES = {v: k for k, v in A.items()}
RULES = core.Rules()


def by_day(events, end=END, window=7, lookback=1, rules=RULES):
    """``(summary, day_start, in_window)`` of each day of the window ending ``end`` (lookback first); events are
    ``(userid, epoch t, action)`` in file order, each filed under its own day."""
    lb, win = core.window_dates(end, window, lookback)
    out = []
    for d in lb + win:
        s0 = core.epoch_day(d) * 86400
        evs = [e for e in events if s0 <= e[1] < s0 + 86400]
        uid = np.array([e[0] for e in evs], np.int64)
        t = np.array([e[1] for e in evs], np.int64)
        act = np.array([A[e[2]] for e in evs], np.int8)
        out.append((ds.summarize(uid, t, act, s0, rules), s0, d in win))
    return out


def combined(events, end=END, window=7, lookback=1, rules=RULES, fast=None):
    users, secs, sess = ds.combine(by_day(events, end, window, lookback, rules), rules, fast)
    return {int(u): (int(a), int(b)) for u, a, b in zip(users, secs, sess, strict=True)}


def oracle(events, end=END, window=7, lookback=1, rules=RULES):
    """The per-user loop over the days read (lookback and window), events in (t, file order) order."""
    lb, win = core.window_dates(end, window, lookback)
    lo = core.epoch_day((lb + win)[0]) * 86400
    ws, we = oracle_bounds(end, window)
    out = {}
    for u in sorted({e[0] for e in events}):
        evs = sorted(((t, i, a) for i, (uu, t, a) in enumerate(events) if uu == u and lo <= t < we))
        secs, n, present = user_online([(t, a) for t, _, a in evs], ws, we, rules.min_gap, rules.timeout,
                                       rules.post_multiplier)
        if present:
            out[u] = (secs, n)
    return out


def at(day: date, hh=0, mm=0, ss=0) -> int:
    return core.epoch_day(day) * 86400 + hh * 3600 + mm * 60 + ss


D = END - timedelta(days=1)  # a window day; D - 6 is the first of the 7-day window, D - 7 the lookback


def test_a_session_across_midnight_counts_its_gap_and_its_post():
    ev = [(1, at(D, 23, 59, 0), "login"), (1, at(D, 23, 59, 50), "post"), (1, at(END, 0, 0, 40), "get"),
          (1, at(END, 0, 5, 0), "logout")]
    assert combined(ev) == oracle(ev) == {1: (3 * (50 + 50 + 260), 1)}


def test_a_timeout_across_midnight_ends_the_session():
    ev = [(1, at(D, 23, 55, 0), "login"), (1, at(D, 23, 55, 30), "get"), (1, at(END, 0, 6, 0), "get"),
          (1, at(END, 0, 6, 30), "get")]
    assert combined(ev) == oracle(ev) == {1: (30, 1)}


def test_a_post_in_the_lookback_day_marks_the_in_window_time():
    first = END - timedelta(days=6)
    ev = [(1, at(first - timedelta(days=1), 23, 58), "login"), (1, at(first - timedelta(days=1), 23, 59), "post"),
          (1, at(first, 0, 1), "get")]
    assert combined(ev) == oracle(ev) == {1: (3 * 120, 1)}


def test_lookback_only_users_have_no_row_and_zero_second_users_do():
    lb = END - timedelta(days=7)
    ev = [(1, at(lb, 10), "login"), (1, at(lb, 10, 5), "get"), (2, at(END, 1), "get"), (3, at(END, 2), "login")]
    assert combined(ev) == oracle(ev) == {2: (0, 0), 3: (0, 0)}


def test_a_login_closes_the_carried_session_at_its_previous_event():
    ev = [(1, at(D, 23, 59), "login"), (1, at(D, 23, 59, 30), "post"), (1, at(END, 0, 0, 10), "login"),
          (1, at(END, 0, 0, 20), "get")]
    assert combined(ev) == oracle(ev) == {1: (90 + 10, 2)}


def test_short_gaps_keep_the_session_going_for_days():
    ev = [(1, at(D, 23, 59, 58), "login"), (1, at(END, 0, 0, 0), "get"), (1, at(END, 0, 0, 1), "post"),
          (1, at(END, 0, 0, 11), "logout")]
    assert combined(ev) == oracle(ev) == {1: (30, 1)}


def test_a_session_spanning_several_days_of_a_month_is_one_session():
    ev = []
    t = at(END - timedelta(days=3), 23, 50)
    ev.append((7, t, "login"))
    while t < at(END, 0, 30):
        t += 500
        ev.append((7, t, "get"))
    assert combined(ev, window=30) == oracle(ev, window=30)
    assert combined(ev, window=30)[7][1] == 1
    assert combined(ev, window=1) == oracle(ev, window=1)


def test_a_day_that_timed_out_before_a_silent_day():
    ev = [(1, at(END - timedelta(days=2), 23, 59), "login"), (1, at(END, 0, 0, 5), "get")]
    assert combined(ev) == oracle(ev) == {1: (0, 0)}


def test_out_of_day_counts_times_outside_the_file_day():
    s0 = at(END)
    assert ds.out_of_day(np.array([s0 - 1, s0, s0 + 86399, s0 + 86400]), s0) == 2


def test_days_must_come_in_order():
    c = ds.Combiner()
    c.add(ds.empty(), 86400, True)
    with pytest.raises(ValueError):
        c.add(ds.empty(), 0, True)


ACT = st.sampled_from(["login", "login", "get", "get", "post", "logout"])
DAYS = st.integers(-8, 0)  # from the lookback day of the 7-day window to END
NEAR_MIDNIGHT = st.one_of(st.integers(0, 700), st.integers(86400 - 700, 86399), st.integers(0, 86399))


@st.composite
def month_events(draw, users=4, max_size=60):
    """Events of a few users over the days before ``END``, times clustered around midnight so sessions and
    timeouts cross it, in file order (day order; within a day any order)."""
    evs = draw(st.lists(st.tuples(st.integers(1, users), st.integers(-31, 0), NEAR_MIDNIGHT, ACT), max_size=max_size))
    evs = [(u, at(END + timedelta(days=d)) + s, a) for u, d, s, a in evs]
    evs.sort(key=lambda e: e[1] // 86400)  # file order: by day (stable), any order within the day
    return evs


@settings(max_examples=400, deadline=None)
@given(month_events(), st.sampled_from([1, 7, 30]), st.integers(0, 2),
       st.sampled_from([core.Rules(), core.Rules(0, 1, 1), core.Rules(5, 60, 2)]))
def test_combined_summaries_equal_the_per_user_loop(events, window, lookback, rules):
    want = oracle(events, END, window, lookback, rules)
    assert combined(events, END, window, lookback, rules, fast=False) == want
    if ds.HAVE_FAST:
        assert combined(events, END, window, lookback, rules, fast=True) == want


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4 * 86400 - 1), ACT), max_size=40), st.integers(1, 4))
def test_split_a_users_events_at_any_day_boundary(evs, window):
    """One user's events over four days: combining the days' summaries equals the rules over them all."""
    start = at(END - timedelta(days=3))
    events = sorted(((1, start + t, a) for t, a in evs), key=lambda e: e[1])
    lb, win = core.window_dates(END, window, 4 - window)
    ws, we = core.window_bounds(END, window)
    uid = np.ones(len(events), np.int64)
    t = np.array([e[1] for e in events], np.int64)
    act = np.array([A[e[2]] for e in events], np.int8)
    direct = core.online_time(uid, t, act, ws, we)
    assert {int(u): (int(a), int(b)) for u, a, b in zip(*direct, strict=True)} == combined(events, END, window,
                                                                                           4 - window)


@pytest.mark.skipif(not ds.HAVE_FAST, reason="the C accelerator is not built")
@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), NEAR_MIDNIGHT, ACT), max_size=80), st.integers(1, 4),
       st.sampled_from([core.Rules(), core.Rules(0, 1, 1), core.Rules(5, 60, 2)]))
def test_the_streamed_summary_equals_the_numpy_one(evs, blocks, rules):
    start = at(END)
    evs = sorted(evs, key=lambda e: e[1])  # file order: time order, users interleaved, ties as drawn
    uid = np.array([e[0] for e in evs], np.int64)
    t = np.array([start + e[1] for e in evs], np.int64)
    act = np.array([A[e[2]] for e in evs], np.int8)
    s = ds.StreamingSummary(start, rules)
    for part in np.array_split(np.arange(len(evs)), blocks):
        assert s.feed(uid[part], t[part], act[part])
    got, want = s.result(), ds.summarize(uid, t, act, start, rules)
    for c in ds.COLUMNS:
        assert got[c].dtype == want[c].dtype and got[c].tolist() == want[c].tolist(), c


@pytest.mark.skipif(not ds.HAVE_FAST, reason="the C accelerator is not built")
def test_the_streamed_summary_refuses_a_user_going_back():
    s = ds.StreamingSummary(0)
    assert not s.feed(np.array([1, 2, 1], np.int64), np.array([10, 5, 9], np.int64), np.zeros(3, np.int8))
    with pytest.raises(RuntimeError):
        s.result()


@pytest.mark.skipif(not ds.HAVE_FAST, reason="the C accelerator is not built")
def test_the_c_merge_walk_refuses_a_userid_it_was_not_given():
    s = ds.summarize(np.array([5], np.int64), np.array([10], np.int64), np.array([core.LOGIN], np.int8), 0)
    users, state = np.array([4, 6], np.int64), np.zeros((2, 5), np.int64)
    cols = [s[c] for c in ds.COLUMNS]
    with pytest.raises(ValueError, match="not in users"):
        ds._fastlog.comb_feed(users, state, *cols, 0, True, 3, 600, 3)
    out = np.empty(4, np.int64)  # room for both
    assert out[:ds._fastlog.merge_union(users, np.array([5, 6], np.int64), out)].tolist() == [4, 5, 6]


@pytest.mark.skipif(not ds.HAVE_FAST, reason="the C accelerator is not built")
def test_the_streamed_summary_counts_times_outside_its_day():
    s = ds.StreamingSummary(86400)
    assert s.feed(np.array([1, 1, 2], np.int64), np.array([86399, 86400, 2 * 86400], np.int64), np.zeros(3, np.int8))
    assert s.outside() == 2 and s.result()["userid"].tolist() == [1]
