"""Cleanup of ``T_endlist_D`` killed halfway and resumed (issue 21, item 5): old vs new.

A private ``redis-server`` (own port, own tmp dir, no persistence) holds a list of ``size`` realistic keys
(``<vid>_<pid>``) plus ``late`` keys pushed after the snapshot. "Killed halfway" is the state a kill leaves:
the first half of the archive already removed, the rest and the late keys still in the list.

* ``old``: one ``LREM key 1`` per archived key (pipelined by 5,000), as before: every key already
  removed scans the whole list, so the resume is quadratic. Timed at small sizes only (``--old-sizes``)
  and extrapolated by its fit ``t = c * absent * list_length``.
* ``new`` (``include.plays.cleanup.remove_archived``): chunks trimmed off the head; resumed from its record
  (``resume``), from an older cleanup's state without a record (``realign``), and from the start (``full``).

Prints JSON: medians of ``--repeat`` runs, the longest single call of the removal as the client saw it
and as Redis timed it (SLOWLOG: how long Redis was held, other clients waiting).
  python bench/bench_cleanup.py --size 5000000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import redis

sys.path[:0] = [os.path.join(os.path.dirname(__file__), ".."), os.path.join(os.path.dirname(__file__), "..", "plugins")]

from include.plays.cleanup import progress_key, remove_archived  # noqa: E402
from tests.support.redis_scripts import Scripts  # noqa: E402
from tests.support.servers import free_port  # noqa: E402
from video_analytics.conventions import endlist_key  # noqa: E402

DAY = "20140107"
NAME = endlist_key(DAY)


class PrivateRedis:
    """A redis-server of our own, stopped by its pid."""

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="bench_cleanup_")
        self.port = free_port()
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                                      "--save", "", "--appendonly", "no", "--loglevel", "warning"],
                                     stdout=subprocess.DEVNULL)
        self.r = redis.Redis(port=self.port, decode_responses=True, socket_timeout=600)
        while True:
            try:
                self.r.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(30)
        shutil.rmtree(self.dir, ignore_errors=True)


def keys_of(n: int) -> list[str]:
    """``n`` collector keys: 7-digit vids over 100,000 videos, a ms timestamp and a counter as the pid."""
    return [f"{1000000 + (i * 7919) % 100000}_{1389052800000 + i * 17}{i % 1000:03d}" for i in range(n)]


def fill(r, keys: list[str], late: list[str]) -> None:
    """The list holds ``keys`` then ``late``; no cleanup record."""
    r.delete(NAME, progress_key(DAY))
    p = r.pipeline(transaction=False)
    for i in range(0, len(keys), 20000):
        p.rpush(NAME, *keys[i: i + 20000])
        if len(p) >= 10:
            p.execute()
    p.rpush(NAME, *late)
    p.execute()


class Longest:
    """The longest single call of the removal's scripts, as the client sees it."""

    def __init__(self):
        self.max, self.t0 = 0.0, 0.0

    def before(self, n: int) -> None:
        self.t0 = time.perf_counter()

    def after(self, n: int) -> None:
        self.max = max(self.max, time.perf_counter() - self.t0)


def old_resume(r, archived: list[str]) -> int:
    removed = 0
    for i in range(0, len(archived), 5000):
        p = r.pipeline(transaction=False)
        for k in archived[i: i + 5000]:
            p.lrem(NAME, 1, k)
        removed += sum(p.execute())
    return removed


def new_case(r, archived: list[str], arr: pa.Array, late: list[str], case: str) -> dict:
    half = len(archived) // 2
    fill(r, archived if case == "full" else archived[half:], late)  # "killed halfway": the first half gone
    if case == "resume":
        r.set(progress_key(DAY), f"run1:{half}")
    r.config_set("slowlog-log-slower-than", 1000)  # every command over 1 ms, timed inside Redis
    r.config_set("slowlog-max-len", 100000)
    r.slowlog_reset()
    lg = Longest()
    with Scripts(r, lg.before, lg.after):
        t = time.perf_counter()
        out = remove_archived(r, DAY, arr, "run1")
        sec = time.perf_counter() - t
    in_redis = max((e["duration"] for e in r.slowlog_get(100000)), default=0) / 1000
    assert r.lrange(NAME, 0, -1) == late, "late plays must stay, archived ones go"
    return {"seconds": sec, "removed": out["removed"], "longest_call_ms": lg.max * 1000, "longest_in_redis_ms": in_redis}


def _extrapolate(rows: list[tuple[int, int, float]], absent: int, length: int) -> float | None:
    """Least squares fit of ``t = a * absent + c * absent * length`` (a per-call cost and a scan of the list
    per absent key) to the old runs, evaluated at ``absent`` keys against a list of ``length``."""
    if len(rows) < 2:
        return None
    import numpy as np

    x = np.array([[ab, ab * ln] for ab, ln, _ in rows], dtype=float)
    (a, c), *_ = np.linalg.lstsq(x, np.array([t for *_, t in rows]), rcond=None)
    return round(float(a * absent + c * absent * length), 0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=5_000_000)
    p.add_argument("--late", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--old-sizes", default="10000,20000,40000")
    a = p.parse_args(argv)
    late = [f"1000001_late{i}" for i in range(a.late)]
    out: dict = {"size": a.size, "late": a.late, "repeat": a.repeat, "old": [], "new": {}}
    with PrivateRedis() as srv:
        r = srv.r
        rows = []
        for n in [int(x) for x in a.old_sizes.split(",") if x]:
            archived = keys_of(n)
            runs = []
            for _ in range(a.repeat):
                fill(r, archived[n // 2:], late)
                t = time.perf_counter()
                old_resume(r, archived)
                runs.append(time.perf_counter() - t)
                assert r.lrange(NAME, 0, -1) == late
            med = statistics.median(runs)
            rows.append((n - n // 2, n - n // 2 + a.late, med))
            out["old"].append({"size": n, "seconds": round(med, 3)})
        out["old_extrapolated_seconds"] = _extrapolate(rows, a.size - a.size // 2, a.size - a.size // 2 + a.late)
        archived = keys_of(a.size)
        arr = pa.array(archived, pa.string())
        for case in ("resume", "realign", "full"):
            runs = [new_case(r, archived, arr, late, case) for _ in range(a.repeat)]
            out["new"][case] = {"seconds": round(statistics.median(x["seconds"] for x in runs), 3),
                                "removed": runs[0]["removed"],
                                "longest_call_ms": round(max(x["longest_call_ms"] for x in runs), 1),
                                "longest_in_redis_ms": round(max(x["longest_in_redis_ms"] for x in runs), 1)}
        out["redis_used_memory_peak_mb"] = round(int(r.info("memory")["used_memory_peak"]) / 2**20, 1)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
