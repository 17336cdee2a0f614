"""The C accelerator (``video_analytics/_fastlog.c``) against the NumPy reference and the per-user loop.

The accelerator must be built in the development environment (``make venv`` builds it; gcc and
python3-dev are installed by ``scripts/services.sh install``): without it the product still runs,
on the NumPy code, but these tests fail so that a broken build is noticed.
"""

from __future__ import annotations

import mmap
from datetime import datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.online_oracle import user_online
from tests.unit import test_online_time as ref
from video_analytics import online_time as core

WIN_START = int((datetime(2014, 1, 5) - datetime(1970, 1, 1)).total_seconds())
A = {"login": core.LOGIN, "logout": core.LOGOUT, "get": core.GET, "post": core.POST}


def test_the_accelerator_is_built():
    assert core.HAVE_FAST, "video_analytics._fastlog is not built: run `make venv` (needs gcc and python3-dev)"


def same_parse(a: core.Parsed, b: core.Parsed) -> None:
    for k in ("userid", "logtime", "action", "line", "reject_line"):
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype and x.tolist() == y.tolist(), k
    assert (a.reject_reason, a.reject_raw, a.rows_in, a.lines) == (b.reject_reason, b.reject_raw, b.rows_in, b.lines)


# --- parsing: byte for byte the same as parse_block -----------------------------------------

TOKENS = ["2014-01-07", "2016-02-29", "2015-02-29", "2014-13-01", "0000-01-01", "9999-12-31", "2014-1-07",
          "09:28:00", "23:59:59", "24:00:00", "09:60:00", "9:00:00", "00:00:60", "0", "258872799",
          "123456789012345678", "1234567890123456789", "-1", "12a", "login", "LOGOUT", "gEt", "post", "put",
          "logins", "gét", "loginlogout", "logtime", "x", "\x0b", "\x00", "\xff"]
SEPS = [" ", "\t", "   ", " \t ", "\r", "\n", "\r\n", "\n\n", ""]


@st.composite
def log_text(draw) -> bytes:
    parts = draw(st.lists(st.tuples(st.sampled_from(TOKENS), st.sampled_from(SEPS)), max_size=40))
    text = "".join(t + s for t, s in parts)
    if draw(st.booleans()):
        text = "logtime userid action\n" + text
    return text.encode("utf-8")


@settings(max_examples=400, deadline=None)
@given(log_text(), st.integers(0, 10**6), st.booleans())
def test_parse_fast_equals_parse_block(data, offset, header):
    same_parse(core.parse_block_fast(data, offset, header), core.parse_block(data, offset, header))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(TOKENS[:7]), st.sampled_from(TOKENS[7:13]), st.sampled_from(TOKENS[13:19]),
                          st.sampled_from(TOKENS[19:28])), max_size=30))
def test_parse_fast_equals_parse_block_on_mostly_valid_lines(rows):
    data = "".join(f"{d} {t}\t{u}  {a}\n" for d, t, u, a in rows).encode()
    same_parse(core.parse_block_fast(data, 0, True), core.parse_block(data, 0, True))


def test_parse_fast_reads_an_mmap_without_copying(tmp_path):
    f = tmp_path / "2014-01-07.log"
    f.write_bytes(b"logtime userid action\n2014-01-07 09:00:00 7 get\nbad line\n2014-01-07 09:00:03 7 LOGIN")
    with open(f, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        view = memoryview(mm)
        p = core.parse_block_fast(view, 0, True)
        same_parse(p, core.parse_block(f.read_bytes(), 0, True))
        del view, p
    assert core.parse_any(b"2014-01-07 09:00:00 7 get\n").userid.tolist() == [7]


# --- streaming rules: the same as the sorted, vectorised rules --------------------------------

event = st.tuples(st.integers(0, 3), st.integers(-1500, 2500), st.sampled_from(["login", "logout", "get", "post"]))


@settings(max_examples=300, deadline=None)
@given(st.lists(event, max_size=80), st.sampled_from([(0, 7 * 86400), (0, 1000), (-1000, 500)]),
       st.sampled_from([core.Rules(), core.Rules(1, 50, 2), core.Rules(0, 300, 5)]), st.data())
def test_streaming_rules_match_the_per_user_loop(events, window, rules, data):
    events = sorted(events, key=lambda e: e[1])  # file order: time ordered, users interleaved
    ws, we = WIN_START + window[0], WIN_START + window[1]
    sr = core.StreamingRules(ws, we, rules)
    uid = np.array([e[0] for e in events], np.int64)
    t = np.array([WIN_START + e[1] for e in events], np.int64)
    act = np.array([A[e[2]] for e in events], np.int8)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(events)), max_size=4)))
    for a, b in zip([0, *cuts], [*cuts, len(events)], strict=True):
        assert sr.feed(uid[a:b], t[a:b], act[a:b])
    got = {int(u): (int(s), int(n)) for u, s, n in zip(*sr.result(), strict=True)}
    want = {}
    for u in sorted(set(uid.tolist())):
        evs = [(WIN_START + tt, a) for uu, tt, a in events if uu == u]
        secs, n, present = user_online(evs, ws, we, rules.min_gap, rules.timeout, rules.post_multiplier)
        if present:
            want[u] = (secs, n)
    assert got == want
    order = core.order_by_user_time(uid, t)
    ref = core.online_time(uid[order], t[order], act[order], ws, we, rules)
    assert all(x.tolist() == y.tolist() for x, y in zip(sr.result(), ref, strict=True))


def test_streaming_rules_refuse_a_user_going_back_in_time():
    sr = core.StreamingRules(0, 10**6)
    # another user's earlier time is fine: only each user's own order matters
    assert sr.feed(np.array([1, 2, 1]), np.array([100, 50, 100]), np.array([0, 0, 2], np.int8))
    assert not sr.feed(np.array([2, 1]), np.array([60, 99]), np.array([2, 2], np.int8))
    assert not sr.feed(np.array([3]), np.array([1]), np.array([0], np.int8))  # stays refused
    with pytest.raises(RuntimeError):
        sr.result()


def test_streaming_rules_many_users_grow_the_table():
    n = 50_000
    uid = np.repeat(np.arange(n, dtype=np.int64) * 7919, 2)
    t = np.tile(np.array([0, 10], np.int64), n) + WIN_START
    act = np.tile(np.array([core.LOGIN, core.POST], np.int8), n)
    sr = core.StreamingRules(WIN_START, WIN_START + 86400)
    assert sr.feed(uid, t, act)
    u, s, c = sr.result()
    assert u.tolist() == (np.arange(n) * 7919).tolist() and set(s.tolist()) == {30} and set(c.tolist()) == {1}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**18), st.integers(-10**9, 10**9), st.integers(0, 3)), max_size=200),
       st.integers(1, 9))
def test_split_by_shard_equals_the_numpy_grouping(rows, shards):
    uid = np.array([r[0] for r in rows], np.int64)
    lt = np.array([r[1] for r in rows], np.int64)
    act = np.array([r[2] for r in rows], np.int8)
    u, t, a, bounds = core.split_by_shard(uid, lt, act, shards)
    order, want_bounds = core.shard_split(core.shard_of(uid, shards), shards)
    assert bounds.tolist() == want_bounds.tolist()
    assert (u.tolist(), t.tolist(), a.tolist()) == (uid[order].tolist(), lt[order].tolist(), act[order].tolist())


# --- every hand-made rule case of test_online_time.py, through the streaming rules ----------------

def streaming_rules_for(events, win_start=ref.WIN_START, win_stop=ref.WIN_STOP, rules=None):
    """``test_online_time.rules_for`` with ``StreamingRules``: the events fed in time order (stable),
    users interleaved as in a log file."""
    events = sorted(events, key=lambda e: e[1])
    sr = core.StreamingRules(win_start, win_stop, rules or core.Rules())
    assert sr.feed(np.array([e[0] for e in events], np.int64),
                   np.array([ref.WIN_START + e[1] for e in events], np.int64),
                   np.array([A[e[2]] for e in events], np.int8))
    return {int(u): (int(s), int(n)) for u, s, n in zip(*sr.result(), strict=True)}


RULE_CASES = [f for name, f in vars(ref).items()
              if name.startswith("test_") and callable(f) and f.__code__.co_argcount == 0
              and ("one" in f.__code__.co_names or "rules_for" in f.__code__.co_names)]


def test_the_hand_made_cases_are_found():
    assert len(RULE_CASES) >= 15


@pytest.mark.parametrize("case", RULE_CASES, ids=lambda f: f.__name__)
def test_hand_made_rule_cases_hold_for_the_streaming_rules(case, monkeypatch):
    monkeypatch.setattr(ref, "rules_for", streaming_rules_for)
    case()


def test_streaming_rules_refuse_the_table_marker_as_a_userid():
    sr = core.StreamingRules(0, 100)
    with pytest.raises(ValueError, match="userid -1"):
        sr.feed(np.array([5, -1]), np.array([1, 2]), np.array([0, 2], np.int8))


def test_a_long_rejected_line_keeps_its_first_kibibyte_and_its_length():
    """Issue 21: a 2 MB bad line is not kept whole (it was, up to any size); a 1 KiB one still is."""
    long_line = b"2014-01-07 09:28:00 7 " + b"\xc3\xa9" * 1_000_000 + b"\r"
    whole = b"x" * (core.REJECT_RAW_MAX - 1) + b"\xc3\xa9"[:1]  # 1,024 bytes, an incomplete character at the end
    data = b"2014-01-07 09:28:00 7 login\n" + long_line + b"\n" + whole + b"\r\n"
    slow = core.parse_block(data, 0, True)
    same_parse(core.parse_block_fast(data, 0, True), slow)
    assert slow.reject_line.tolist() == [2, 3] and slow.reject_reason == [core.REASON_ACTION, core.REASON_FEW]
    cut, kept = slow.reject_raw
    head = long_line[:core.REJECT_RAW_MAX].decode("utf-8", "replace")
    assert cut == f"{head}... [2,000,022 bytes, cut to the first 1,024]"
    assert kept == whole.decode("utf-8", "replace")
