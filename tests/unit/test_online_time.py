"""CONTRACT §1: parsing and rules, hand-computed cases and a property test against the oracle."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.online_oracle import user_online
from video_analytics import online_time as core

END = date(2014, 1, 11)
WIN_START = int((datetime(2014, 1, 5) - datetime(1970, 1, 1)).total_seconds())
WIN_STOP = WIN_START + 7 * 86400
A = {"login": core.LOGIN, "logout": core.LOGOUT, "get": core.GET, "post": core.POST}


def rules_for(events, win_start=WIN_START, win_stop=WIN_STOP, rules=None):
    """``{userid: (seconds, sessions)}`` of ``(userid, seconds after WIN_START, action)`` events
    given in (userid, time, line) order."""
    uid = np.array([e[0] for e in events], dtype=np.int64)
    t = np.array([WIN_START + e[1] for e in events], dtype=np.int64)
    act = np.array([A[e[2]] for e in events], dtype=np.int8)
    order = core.sort_order(uid, t, np.zeros(len(uid), np.int32), np.arange(len(uid), dtype=np.int32))
    users, secs, sess = core.online_time(uid[order], t[order], act[order], win_start, win_stop, rules or core.Rules())
    return {int(u): (int(s), int(n)) for u, s, n in zip(users, secs, sess, strict=True)}


def one(*evs):
    """Result of a single user 1 with ``(offset, action)`` events."""
    return rules_for([(1, t, a) for t, a in evs]).get(1)


# --- rules -----------------------------------------------------------------------------------

def test_gap_of_exactly_min_gap_counts_and_shorter_does_not():
    assert one((0, "login"), (3, "get"), (5, "get")) == (3, 1)
    assert one((0, "login"), (2, "get")) == (0, 0)


def test_gap_of_exactly_timeout_counts_601_times_out():
    assert one((0, "login"), (600, "get")) == (600, 1)
    assert one((0, "login"), (601, "get")) == (0, 0)


def test_after_a_timeout_nothing_counts_until_the_next_login():
    assert one((0, "login"), (10, "get"), (700, "get"), (710, "get"), (800, "login"), (805, "get")) == (15, 2)


def test_equal_timestamps_add_nothing_and_keep_the_session():
    assert one((0, "login"), (0, "get"), (0, "post"), (10, "get")) == (30, 1)


def test_login_inside_an_open_session_closes_it_at_its_previous_event():
    assert one((0, "login"), (10, "get"), (20, "login"), (30, "get")) == (20, 2)
    # the post belongs to the second session only
    assert one((0, "login"), (10, "get"), (20, "login"), (30, "post")) == (10 + 30, 2)


def test_operations_before_any_login_add_nothing():
    assert one((0, "get"), (10, "post"), (20, "login"), (25, "get")) == (5, 1)


def test_logout_without_a_session_adds_nothing_but_user_has_a_row():
    assert one((0, "logout"), (5, "get")) == (0, 0)


def test_logout_counts_its_gap_then_closes():
    assert one((0, "login"), (10, "logout"), (20, "get"), (30, "post")) == (10, 1)


def test_post_marks_the_session_triple_time():
    assert one((0, "login"), (10, "post"), (20, "get")) == (60, 1)


def test_post_after_a_timeout_marks_nothing():
    assert one((0, "login"), (10, "get"), (700, "post")) == (10, 1)
    assert one((0, "login"), (10, "get"), (700, "post"), (800, "login"), (810, "post")) == (10 + 30, 2)


def test_post_before_the_timeout_marks_the_session_time_before_it():
    assert one((0, "login"), (100, "post"), (200, "get"), (900, "get")) == (600, 1)


def test_session_open_at_data_end_closes_at_its_last_event():
    assert one((0, "login"), (50, "get"), (80, "get")) == (80, 1)


def test_session_crossing_midnight_from_the_lookback_day():
    # login 23:58:00 and post 23:59:00 the day before the window, get 00:01:00 inside:
    # only the 120 s gap ending inside the window counts, tripled by the earlier post
    assert one((-120, "login"), (-60, "post"), (60, "get")) == (120 * 3, 1)
    assert one((-120, "login"), (-60, "get"), (60, "get")) == (120, 1)


def test_gaps_ending_before_the_window_do_not_count_and_users_only_before_get_no_row():
    assert rules_for([(1, -500, "login"), (1, -100, "get"), (2, -100, "login"), (2, 20, "get")]) == {2: (120, 1)}


def test_gaps_ending_after_the_window_do_not_count():
    last = 7 * 86400
    assert one((last - 10, "login"), (last - 4, "get"), (last + 5, "post")) == (6 * 3, 1)


def test_user_with_one_event_in_window_and_short_sessions_gets_zero():
    assert rules_for([(5, 10, "login"), (6, 10, "login"), (6, 11, "get")]) == {5: (0, 0), 6: (0, 0)}


def test_sessions_counts_only_sessions_adding_time_in_window():
    got = one((-300, "login"), (-200, "get"), (-100, "logout"), (0, "login"), (1, "get"), (10, "login"), (20, "get"))
    assert got == (10, 1)


def test_rules_are_parameters():
    r = core.Rules(min_gap=1, timeout=100, post_multiplier=2)
    assert rules_for([(1, 0, "login"), (1, 2, "post"), (1, 102, "get"), (1, 103, "get")], rules=r) == {1: (206, 1)}
    assert rules_for([(1, 0, "login"), (1, 2, "post"), (1, 103, "get"), (1, 104, "get")], rules=r) == {1: (4, 1)}


def test_several_users_are_independent():
    got = rules_for([(1, 0, "login"), (1, 10, "get"), (2, 12, "get"), (2, 20, "login"), (2, 50, "post")])
    assert got == {1: (10, 1), 2: (90, 1)}


def test_empty_input():
    u, s, n = core.online_time(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int8), 0, 1)
    assert len(u) == len(s) == len(n) == 0


# --- property: vectorised rules == per-user loop -------------------------------------------

event = st.tuples(
    st.integers(0, 3),  # user
    st.integers(-1500, 2500),  # offset from the window start
    st.sampled_from(["login", "logout", "get", "post"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(event, max_size=60), st.sampled_from([(0, 7 * 86400), (0, 1000), (-1000, 500)]),
       st.sampled_from([core.Rules(), core.Rules(1, 50, 2), core.Rules(0, 300, 5)]))
def test_vectorised_rules_match_the_per_user_loop(events, window, rules):
    events = sorted(events, key=lambda e: (e[0], e[1]))  # stable: list order breaks ties
    ws, we = WIN_START + window[0], WIN_START + window[1]
    got = rules_for(events, ws, we, rules)
    want = {}
    for u in sorted({e[0] for e in events}):
        evs = [(WIN_START + t, a) for uu, t, a in events if uu == u]
        secs, n, present = user_online(evs, ws, we, rules.min_gap, rules.timeout, rules.post_multiplier)
        if present:
            want[u] = (secs, n)
    assert got == want


# --- parsing ---------------------------------------------------------------------------------

def parse(text: str, offset: int = 0, header: bool = True) -> core.Parsed:
    return core.parse_block(text.encode(), offset, header)


def epoch(s: str) -> int:
    return int((datetime.fromisoformat(s) - datetime(1970, 1, 1)).total_seconds())


def test_parse_valid_lines_with_runs_of_spaces_and_tabs_and_case():
    p = parse("logtime  userid  action\n2014-01-07 09:27:56        258872799       login\n"
              "2014-01-07\t09:28:00\t\t1\tLogOut\r\n 2014-01-07 09:28:01 0 POST \n2016-02-29 23:59:59 123456789012345678 gEt")
    assert p.userid.tolist() == [258872799, 1, 0, 123456789012345678]
    assert p.logtime.tolist() == [epoch("2014-01-07 09:27:56"), epoch("2014-01-07 09:28:00"),
                                  epoch("2014-01-07 09:28:01"), epoch("2016-02-29 23:59:59")]
    assert p.action.tolist() == [core.LOGIN, core.LOGOUT, core.POST, core.GET]
    assert p.line.tolist() == [2, 3, 4, 5]
    assert p.rows_in == 4 and p.reject_reason == []


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("2014-02-30 09:00:00 1 get", core.REASON_DATE),
        ("2015-02-29 09:00:00 1 get", core.REASON_DATE),
        ("2014-13-01 09:00:00 1 get", core.REASON_DATE),
        ("2014-1-07 09:00:00 1 get", core.REASON_DATE),
        ("2014/01/07 09:00:00 1 get", core.REASON_DATE),
        ("2014-01-07 24:00:00 1 get", core.REASON_TIME),
        ("2014-01-07 09:60:00 1 get", core.REASON_TIME),
        ("2014-01-07 9:00:00 1 get", core.REASON_TIME),
        ("2014-01-07 09:00:00 -1 get", core.REASON_USERID),
        ("2014-01-07 09:00:00 +1 get", core.REASON_USERID),
        ("2014-01-07 09:00:00 12a get", core.REASON_USERID),
        ("2014-01-07 09:00:00 1234567890123456789 get", core.REASON_USERID),
        ("2014-01-07 09:00:00 1 put", core.REASON_ACTION),
        ("2014-01-07 09:00:00 1 logins", core.REASON_ACTION),
        ("2014-01-07 09:00:00 1 log", core.REASON_ACTION),
        ("2014-01-07 09:00:00 1 gét", core.REASON_ACTION),
        ("2014-01-07 09:00:00 1 loginlogout", core.REASON_ACTION),
        ("2014-01-07 09:00:00 1", core.REASON_FEW),
        ("2014-01-07 09:00:00 1 get extra", core.REASON_MANY),
        ("2014-01-07T09:00:00 1 get", core.REASON_FEW),
        ("logtime userid action", core.REASON_FEW),
        ("2014-01-07\x0b09:00:00 1 get", core.REASON_FEW),
    ],
)
def test_parse_rejects(line, reason):
    p = parse("2014-01-07 09:00:00 7 get\n" + line + "\n2014-01-07 09:00:01 7 get\n", offset=10, header=False)
    assert p.reject_reason == [reason]
    assert p.reject_line.tolist() == [12]
    assert p.reject_raw == [line]
    assert p.line.tolist() == [11, 13]
    assert p.rows_in == 3


def test_parse_header_only_on_the_first_line_of_a_file_blank_lines_skipped():
    p = parse("logtime userid action\n\n   \n\t\r\n2014-01-07 09:00:00 7 get\n")
    assert p.rows_in == 1 and p.reject_reason == [] and p.line.tolist() == [5]
    p = parse("logtime userid action\n2014-01-07 09:00:00 7 get\n", offset=100, header=False)
    assert p.rows_in == 2 and p.reject_reason == [core.REASON_FEW]


def test_parse_empty():
    assert parse("").rows_in == 0
    assert parse("\n\n").rows_in == 0


def test_shard_of_is_stable_and_spread():
    u = np.arange(10_000, dtype=np.int64) * 7 + 258872799
    s = core.shard_of(u, 8)
    assert s.tolist() == core.shard_of(u.copy(), 8).tolist()
    assert core.shard_of(np.array([258872799]), 8).tolist() == [int(s[0])]
    counts = np.bincount(s, minlength=8)
    assert counts.min() > 1000


def test_days_from_civil():
    y = np.array([1970, 2000, 2014, 2016, 1969])
    m = np.array([1, 3, 1, 2, 12])
    d = np.array([1, 1, 7, 29, 31])
    want = [(date(*x) - date(1970, 1, 1)).days for x in zip(y, m, d, strict=True)]
    assert core.days_from_civil(y, m, d).tolist() == want


def test_window_epoch_matches_dates():
    assert WIN_START == (date(2014, 1, 5) - date(1970, 1, 1)).days * 86400
    assert END - timedelta(days=6) == date(2014, 1, 5)


def test_window_arithmetic():
    import datetime as dt

    end = dt.date(2014, 1, 7)
    start, stop = core.window_bounds(end, 7)
    assert stop - start == 7 * 86400
    assert start == core.epoch_day(dt.date(2014, 1, 1)) * 86400
    lookback, window = core.window_dates(end, 7, 2)
    assert window[0] == dt.date(2014, 1, 1) and window[-1] == end and len(window) == 7
    assert lookback == [dt.date(2013, 12, 30), dt.date(2013, 12, 31)]
    with pytest.raises(ValueError):
        core.window_dates(end, 0, 1)


def test_shard_split_groups_rows_stably():
    shard = np.array([2, 0, 2, 1, 0], dtype=np.int32)
    order, bounds = core.shard_split(shard, 4)
    assert bounds.tolist() == [0, 2, 3, 5, 5]
    assert order.tolist() == [1, 4, 3, 0, 2]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 10**6)), max_size=60))
def test_order_by_user_time_is_a_stable_sort(rows):
    uid = np.array([r[0] for r in rows], dtype=np.int64)
    lt = np.array([r[1] for r in rows], dtype=np.int64)
    got = core.order_by_user_time(uid, lt)
    assert got.tolist() == sorted(range(len(rows)), key=lambda i: (rows[i][0], rows[i][1], i))


def test_users_in_window_counts_distinct_sorted_users():
    uid = np.array([1, 1, 2, 3, 3], dtype=np.int64)
    lt = np.array([5, 50, 5, 50, 60], dtype=np.int64)
    assert core.users_in_window(uid, lt, 10, 100) == 2
    assert core.users_in_window(uid, lt, 100, 200) == 0
