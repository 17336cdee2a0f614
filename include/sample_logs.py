"""Realistic sample action logs (``YYYY-MM-DD.log``) for tests, demos and benchmarks.

Users have sessions: a login, then gets and posts with gaps mostly between 3 s and a few
minutes, some under 3 s, some over 600 s (timeouts); logouts are sometimes missing,
sessions cross midnight, a few start without a login, a few actions are in upper or mixed
case, and about 0.1 % of lines are malformed. Generation is vectorised (NumPy and Arrow
compute), one loop iteration per day, so tens of millions of events take seconds.
"""

from __future__ import annotations

import os
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER = b"logtime                userid      action\n"
EVENTS_PER_USER_DAY = 12
MALFORMED_SHARE = 0.001

_ACTIONS = ["login", "logout", "get", "post"]
_ACTION_POOL = pa.array([a + "\n" for a in _ACTIONS] + [a.upper() + "\n" for a in _ACTIONS]
                        + [a.capitalize() + "\n" for a in _ACTIONS])
_SEP_POOL = pa.array([" ", "\t", "    ", " \t "])
_SEP_P = [0.80, 0.12, 0.06, 0.02]


def _gaps(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds between two events of a session: a mixture of short, normal and long gaps."""
    kind = rng.choice(6, size=n, p=[0.08, 0.80, 0.05, 0.04, 0.015, 0.015])
    normal = np.minimum(rng.exponential(45.0, n).astype(np.int64) + 3, 590)
    out = np.select(
        [kind == 0, kind == 1, kind == 2, kind == 3, kind == 4],
        [rng.integers(0, 3, n), normal, rng.integers(100, 600, n), rng.integers(601, 3000, n),
         np.full(n, 3)],
        default=np.full(n, 600),
    )
    return out.astype(np.int64)


def _time_strings(day: date, sec: np.ndarray) -> pa.Array:
    """``YYYY-MM-DD HH:MM:SS`` strings for seconds within ``day``, built as a byte matrix."""
    n = len(sec)
    m = np.empty((n, 19), dtype=np.uint8)
    m[:, :11] = np.frombuffer(day.strftime("%Y-%m-%d ").encode(), dtype=np.uint8)
    hh, rem = np.divmod(sec, 3600)
    mi, ss = np.divmod(rem, 60)
    for col, v in ((11, hh), (14, mi), (17, ss)):
        m[:, col] = 48 + v // 10
        m[:, col + 1] = 48 + v % 10
    m[:, 13] = m[:, 16] = ord(":")
    offsets = np.arange(0, 19 * n + 1, 19, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(m.tobytes()))


def _sessions(rng: np.random.Generator, users: int, total: int, t0: int, span: int):
    """Every event of the sample, sorted by time: ``(t, userid, action, letter case)``."""
    ids = np.unique(rng.integers(100_000_000, 2_000_000_000, size=int(users * 1.1) + 10))
    ids = rng.permutation(ids)[:users]
    weight = 1.0 / (np.arange(users) + 20.0) ** 0.7  # some users are much busier than others
    weight /= weight.sum()

    per_session = 1 + rng.geometric(1 / 11, size=max(1, total // 6))
    cut = int(np.searchsorted(np.cumsum(per_session), total)) + 1
    per_session = per_session[:cut]
    nsess = len(per_session)
    sess_user = ids[rng.choice(users, size=nsess, p=weight)]
    sess_start = t0 + rng.integers(0, span, size=nsess)

    n = int(per_session.sum())
    sess = np.repeat(np.arange(nsess), per_session)
    offs = np.cumsum(per_session) - per_session
    pos = np.arange(n) - offs[sess]
    gap = _gaps(rng, n)
    gap[pos == 0] = 0
    csum = np.cumsum(gap)
    t = sess_start[sess] + csum - csum[offs][sess]

    act = np.where(rng.random(n) < 0.04, 3, 2).astype(np.int8)
    act[pos == 0] = np.where(rng.random(nsess) < 0.02, 2, 0)  # a few sessions lack their login
    last = offs + per_session - 1
    act[last[(per_session > 1) & (rng.random(nsess) < 0.7)]] = 1
    case = rng.choice(3, size=n, p=[0.995, 0.003, 0.002]).astype(np.int8)
    userid = sess_user[sess]
    del sess, pos, gap, csum

    keep = t < t0 + span
    order = np.argsort(t[keep], kind="stable")
    return t[keep][order], userid[keep][order], act[keep][order], case[keep][order]


def _malformed(kind: np.ndarray, good, ts, uid, act_s, sep):
    """The day's lines with the malformed kinds (1..6) in place of the good lines they mark."""
    nl = pa.scalar("\n")
    variants = [
        good,
        pc.binary_join_element_wise(ts, pc.binary_join_element_wise(uid, nl, ""), sep),  # too few
        pc.binary_join_element_wise(ts, uid, pa.scalar("put\n"), sep),  # unknown action
        pc.binary_join_element_wise(ts, pc.binary_join_element_wise("-", uid, ""), act_s, sep),
        pc.binary_join_element_wise(pa.scalar("2014-02-30 25:61:00"), uid, act_s, sep),  # bad date
        pc.binary_join_element_wise(ts, uid, pa.scalar("get"), pa.scalar("x1\n"), sep),  # too many
        pc.binary_join_element_wise(ts, pc.utf8_replace_slice(uid, 2, 3, "O"), act_s, sep),
    ]
    return pc.choose(pa.array(kind.astype(np.int8)), *variants)


def _write_day(rng: np.random.Generator, path: str, day: date, sec: np.ndarray, userid: np.ndarray,
               act: np.ndarray, case: np.ndarray) -> int:
    """Write one day's file (``sec``: seconds within the day); returns its malformed line count."""
    m = len(sec)
    ts = _time_strings(day, sec)
    uid = pc.cast(pa.array(userid), pa.string())
    act_s = _ACTION_POOL.take(pa.array(act.astype(np.int32) + 4 * case))
    sep = _SEP_POOL.take(pa.array(rng.choice(len(_SEP_POOL), size=m, p=_SEP_P)))
    good = pc.binary_join_element_wise(ts, uid, act_s, sep)
    kind = np.where(rng.random(m) < MALFORMED_SHARE, rng.integers(1, 7, size=m), 0)
    lines = _malformed(kind, good, ts, uid, act_s, sep) if kind.any() else good
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=m + 1, offset=lines.offset * 4)
    data = lines.buffers()[2]
    with open(path + ".tmp", "wb") as fh:
        fh.write(HEADER)
        fh.write(memoryview(data)[offsets[0]:offsets[-1]])
    os.replace(path + ".tmp", path)
    return int((kind > 0).sum())


def generate_logs(
    log_dir: str,
    end: date,
    days: int = 8,
    users: int = 2000,
    seed: int = 7,
    events: int | None = None,
) -> dict:
    """Write ``days`` daily log files ending at ``end`` into ``log_dir``.

    ``events`` is the approximate total number of lines (default ``users * days * 12``).
    Deterministic given the arguments. Returns a summary dict.
    """
    rng = np.random.default_rng(seed)
    total = int(events if events is not None else users * days * EVENTS_PER_USER_DAY)
    first = end - timedelta(days=days - 1)
    t0 = int((first - date(1970, 1, 1)).days) * 86400
    t, userid, act, case = _sessions(rng, users, total, t0, days * 86400)

    os.makedirs(log_dir, exist_ok=True)
    bounds = np.searchsorted(t, t0 + 86400 * np.arange(days + 1))
    files, lines_total, malformed_total = [], 0, 0
    for k in range(days):
        day = first + timedelta(days=k)
        a, b = bounds[k], bounds[k + 1]
        path = os.path.join(log_dir, f"{day.isoformat()}.log")
        malformed_total += _write_day(rng, path, day, t[a:b] - (t0 + 86400 * k), userid[a:b], act[a:b], case[a:b])
        files.append(path)
        lines_total += int(b - a)
    return {
        "log_dir": log_dir,
        "files": files,
        "first": first.isoformat(),
        "end": end.isoformat(),
        "events": lines_total,
        "malformed": malformed_total,
        "users": int(len(np.unique(userid))),
        "seed": seed,
    }
