"""Benchmark of the play statistics (ingest + rollup) against the legacy port, on the local Redis.

Each size runs in its own process (so peak RSS is that run's): generate the day into a scratch Redis
database, then time ``ingest_plays`` and ``rollup_videos``, count Redis round trips (socket sends: one
per pipeline or command) and MongoDB calls on mongomock (``bulk_write`` / ``find``), and optionally run
the legacy port (tests/support/legacy_oracle.py) on the same data in another Redis database.

    .venv/bin/python bench/bench_plays.py --plays 100000 1000000 --legacy-plays 20000

``--runs N`` times each size N times on one generated day (the play-id and category caches are reset
between runs, so every run starts from the same state); ``--floor`` also times the raw Redis snapshot
alone (ranged LRANGE + pipelined MGET of ``K_S``/``K_J``/``K_z1`` into memory, no decoding, no files).
Redis databases: ``--redis-db`` / ``--legacy-redis-db`` or ``BENCH_REDIS_DB`` / ``BENCH_LEGACY_REDIS_DB``; the server's
port ``BENCH_REDIS_PORT`` (default 6379).
``--model realistic`` (default; ``include/viewing_model.py``: nearly every play's ``K_J`` its own) or ``pooled``
(the best case: every ``K_J`` from a pool of at most 5,000); each result carries ``distinct_kj_share``.
``--cli`` also times ``video-analytics plays`` as a user runs it (ingest, rollup and verify, start-up included).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DAY = "20140107"
HISTORY_DAY = "20140106"  # --history: the day before, run first (untimed), so DAY folds onto a state
# a Redis server of the bench's own (e.g. without persistence, for a 5M day: ~17 GB of realistic values)
REDIS_PORT = int(os.environ.get("BENCH_REDIS_PORT", "6379"))


class Counts:
    redis = 0
    bulk = 0
    find = 0
    update = 0


def _instrument():
    import mongomock.collection as mc
    import redis.connection as rc

    orig_send = rc.AbstractConnection.send_packed_command

    def send(self, *a, **k):
        Counts.redis += 1
        return orig_send(self, *a, **k)

    rc.AbstractConnection.send_packed_command = send
    for name, attr in (("bulk_write", "bulk"), ("find", "find"), ("find_one", "find"), ("update_one", "update")):
        orig = getattr(mc.Collection, name)

        def wrap(self, *a, _o=orig, _attr=attr, **k):
            setattr(Counts, _attr, getattr(Counts, _attr) + 1)
            return _o(self, *a, **k)

        setattr(mc.Collection, name, wrap)


def _mysql(db: str):
    import MySQLdb

    conn = MySQLdb.connect(host="127.0.0.1", user="video", passwd="video")
    conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{db}`")  # noqa: S608 - fixed test_* name
    conn.close()
    return MySQLdb.connect(host="127.0.0.1", user="video", passwd="video", db=db, charset="utf8")


def _redis(db: int):
    import redis

    return redis.Redis(host="127.0.0.1", port=REDIS_PORT, db=db, decode_responses=True)


class _TreeRss:
    """The largest sum of RSS over a process and its descendants (the decoder processes), and the largest RSS of
    any one of them, sampled every 20 ms by a thread. It reads ``/proc`` directly (the children of each thread,
    and ``statm``): psutil's ``children()`` scans every process of the machine: two such samplers took about 15 %
    of a core from the command being measured."""

    _PAGE = os.sysconf("SC_PAGE_SIZE")

    def __init__(self, pid: int | None = None) -> None:
        import threading

        self.peak = 0
        self.largest = 0
        self._pid = pid or os.getpid()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    @staticmethod
    def _read(path: str) -> str:
        try:
            with open(path) as fh:
                return fh.read()
        except OSError:  # the process ended between the listing and this read
            return ""

    def _tree(self) -> list[int]:
        pids, todo = [], [self._pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            try:
                tasks = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for t in tasks:
                todo += [int(c) for c in self._read(f"/proc/{pid}/task/{t}/children").split()]
        return pids

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = [int(f[1]) * self._PAGE for p in self._tree() if len(f := self._read(f"/proc/{p}/statm").split()) > 1]
            self.peak = max(self.peak, sum(rss))
            self.largest = max([self.largest, *rss])
            self._stop.wait(0.02)

    def stop(self) -> float:
        self._stop.set()
        self._t.join()
        return self.peak / 2**20


def cmd_gen(a) -> dict:
    from include.sample_plays import generate_plays

    r = _redis(a.redis_db)
    r.flushdb(asynchronous=True)
    out = generate_plays(r, _mysql(a.mysql_db), DAY, plays=a.n, model=a.model)
    out["distinct_kj_share"] = out["segment_patterns"] / a.n
    if a.history:
        out["history"] = generate_plays(r, _mysql(a.mysql_db), HISTORY_DAY, plays=a.n, model=a.model)
    return out


def cmd_new(a) -> dict:
    import mongomock

    from tests.support import mongomock_shim

    mongomock_shim.install()
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    from include.plays import rollup_videos as rv
    from include.plays.ingest_plays import ingest_plays
    from include.plays.publish import publish
    from include.plays.rollup_videos import rollup_videos
    from include.storage import DataRoot

    _instrument()
    day_s = _time_rollup_day(rv)
    # what a task process does at start, before the task's code (task_runner: macros and listener plugins);
    # the MySQL hook's lineage collector would otherwise load the plugins inside the timed ingest
    from airflow.sdk.listener import get_listener_manager
    from airflow.sdk.plugins_manager import integrate_macros_plugins

    integrate_macros_plugins()
    get_listener_manager()
    r = _redis(a.redis_db)
    hook = MySqlHook(mysql_conn_id="video_mysql", schema=a.mysql_db)
    tmp = tempfile.mkdtemp(prefix="bench_plays_")
    try:
        root = DataRoot(tmp)
        tree = _TreeRss()
        ru0 = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        t0 = time.perf_counter()
        ing = ingest_plays(root, r, hook, DAY, **({"chunk": a.chunk} if a.chunk else {}),
                           **({"workers": a.workers} if a.workers >= 0 else {}))
        t1 = time.perf_counter()
        rss_ingest = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        peak_tree_ingest = tree.stop()
        tree = _TreeRss()
        rollup_proc = None
        if a.rollup_process:  # as Airflow runs it: its own task process (timed inside it)
            rollup_proc = _child("--stage", "rollup", "--root", tmp)
            t2 = t1 + rollup_proc["seconds"]
            day_s["s"] = rollup_proc["rollup_day_s"]
        else:
            rollup_videos(root, DAY)
            t2 = time.perf_counter()
        ru1 = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        peak_rollup_tree = tree.stop()
        # with --rollup-process the rollup is another task process: this one (idle) is not part of it
        peak_tree = max(peak_tree_ingest, rollup_proc["peak_rss_mb"] if rollup_proc else peak_rollup_tree)
        cpu_each = [b.ru_utime + b.ru_stime - a.ru_utime - a.ru_stime for a, b in zip(ru0, ru1, strict=True)]
        cpu = sum(cpu_each)
        rt = Counts.redis + ing.get("redis_round_trips_in_workers", 0)  # workers' sends are not patched
        out = {"plays": a.n, "ingested": ing["ingested"], "ingest_s": t1 - t0, "rollup_s": t2 - t1,
               "rollup_day_s": day_s.get("s"), "plays_per_s": a.n / (t2 - t0),
               "plays_per_s_ingest_rollup_day": a.n / (t1 - t0 + day_s.get("s", 0.0)),
               "peak_rss_mb_tree": peak_tree, "peak_rss_mb_tree_ingest": peak_tree_ingest,
               "peak_rss_mb_rollup_process": rollup_proc and rollup_proc["peak_rss_mb"], "cpu_s": cpu, "cpu_s_main": cpu_each[0], "cpu_s_decoders": cpu_each[1], "redis_round_trips": rt, "redis_rt_per_1000": 1000 * rt / a.n, "peak_rss_mb_ingest": rss_ingest,
               "distinct_J": ing["distinct_segment_values"], "phase_s": ing["seconds"],
               "peak_rss_mb_ingest_rollup": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        if a.publish:
            db = mongomock.MongoClient()["video"]
            Counts.bulk = Counts.find = 0
            t3 = time.perf_counter()
            pub = publish(root, DAY, db)
            out["publish_s"] = time.perf_counter() - t3
            out["mongo_bulk_calls"] = pub["bulk_calls"]
            out["mongo_calls_per_1000"] = 1000 * (Counts.bulk + Counts.find) / a.n
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        # decoder processes: the largest one's peak (VmHWM reported by the workers; RUSAGE_CHILDREN would
        # count the parent's pages a spawned child shares between fork and exec), counted once per worker
        out["decoder_processes"] = ing.get("decoder_processes", 0)
        out["peak_rss_mb_decoder"] = ing.get("decoder_peak_rss_mb", 0.0)
        out["peak_rss_mb_total_bound"] = out["peak_rss_mb"] + out["decoder_processes"] * out["peak_rss_mb_decoder"]
        out["data_root_mb"] = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 2**20
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _time_rollup_day(rv) -> dict:
    """Wrap ``rv.rollup_day`` so that its last duration lands in the returned dict's ``"s"``."""
    day_s: dict = {}
    real_day = rv.rollup_day

    def timed_day(*args, **kw):
        t = time.perf_counter()
        try:
            return real_day(*args, **kw)
        finally:
            day_s["s"] = time.perf_counter() - t

    rv.rollup_day = timed_day
    return day_s


def cmd_rollup(a) -> dict:
    """``rollup_videos`` of the day in ``--root``, alone in this process (what its Airflow task process does
    after start-up: plugins loaded first)."""
    from airflow.sdk.listener import get_listener_manager
    from airflow.sdk.plugins_manager import integrate_macros_plugins

    from include.plays import rollup_videos as rv
    from include.storage import DataRoot

    integrate_macros_plugins()
    get_listener_manager()
    day_s = _time_rollup_day(rv)
    t0 = time.perf_counter()
    rv.rollup_videos(DataRoot(a.root), DAY)
    from include.procs import peak_rss_mb

    return {"seconds": time.perf_counter() - t0, "rollup_day_s": day_s["s"], "peak_rss_mb": peak_rss_mb()}


def cmd_floor(a) -> dict:
    """The raw snapshot alone: ranged LRANGE and pipelined MGETs (as ingest_plays issues them) into
    memory, with the same client (bytes, RESP2, hiredis when installed); no decoding, no files."""
    import redis

    from include.plays.ingest_plays import LRANGE_STEP
    from video_analytics.conventions import endlist_key

    _instrument()
    r = redis.Redis(host="127.0.0.1", port=REDIS_PORT, db=a.redis_db, decode_responses=False, protocol=2)
    t0 = time.perf_counter()
    keys: list = []
    start = 0
    while True:
        part = r.lrange(endlist_key(DAY), start, start + LRANGE_STEP - 1)
        keys += part
        if len(part) < LRANGE_STEP:
            break
        start += LRANGE_STEP
    keys = list(dict.fromkeys(keys))
    t1 = time.perf_counter()
    vals = 0
    for i in range(0, len(keys), a.floor_batch):
        part = keys[i: i + a.floor_batch]
        p = r.pipeline(transaction=False)
        p.mget([k + b"_S" for k in part])
        p.mget([k + b"_J" for k in part])
        p.mget([k + b"_z1" for k in part])
        vals += sum(len(x) for x in p.execute())
    t2 = time.perf_counter()
    return {"plays": a.n, "keys": len(keys), "values": vals, "lrange_s": t1 - t0, "mget_s": t2 - t1,
            "seconds": t2 - t0, "plays_per_s": a.n / (t2 - t0), "batch": a.floor_batch,
            "redis_rt_per_1000": 1000 * Counts.redis / a.n,
            "hiredis": redis.utils.HIREDIS_AVAILABLE,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def cmd_parse(a) -> dict:
    """The ``K_J`` parser alone (``decode_j_arrow``, in-process) over the day's first ``--n`` values as the
    decoders read them (an Arrow array), median of ``--runs``; and the share of pairs that follow the pair
    before them in their value (the segment one more, the same count: the parser's guess, which matches when
    the value is written tight, as ujson writes it). ``--parse-text spaces`` or ``seeks`` rewrites the values
    first (the parser's worst cases: no pair is ever its guess)."""
    import statistics

    import numpy as np
    import pyarrow.compute as pc
    import redis

    from include.plays.ingest_plays import MGET_BATCH
    from include.plays.mget import fetch_arrays
    from video_analytics import play_decode as pd
    from video_analytics import play_fast as pf
    from video_analytics.conventions import endlist_key

    r = redis.Redis(host="127.0.0.1", port=REDIS_PORT, db=a.redis_db, decode_responses=False, protocol=2)
    keys = [k.decode() for k in r.lrange(endlist_key(DAY), 0, a.n - 1)]
    j = fetch_arrays(r, keys, MGET_BATCH, lambda: None)[1].combine_chunks()
    if a.parse_text == "spaces":  # as json.dumps writes them: no pair is ever the guess's text
        j = pc.replace_substring(j, b",", b", ")
    elif a.parse_text == "seeks":  # a pair [1,1] between every two: no pair follows the one before it
        j = pc.replace_substring(j, b"],[", b"],[1,1],[")
    parts, times = pf._arrow_parts(j), []  # noqa: SLF001 - the decoders' own call
    for _ in range(max(a.runs, 1)):
        t0 = time.perf_counter()
        status, _, lengths, segs, cnts = pf._fastplay.decode_j_arrow(parts, int(pd.SEGMENT_MAX), pf.FAST_MAX_BYTES)
        times.append(time.perf_counter() - t0)
    s, c, n = (np.frombuffer(b, dtype=t) for b, t in ((segs, np.int32), (cnts, np.int32), (lengths, np.int64)))
    first = np.zeros(len(s) + 1, dtype=bool)
    first[np.concatenate(([0], np.cumsum(n)))] = True  # each value's first pair (and the end)
    follows = ~first[1:len(s)]
    guessed = follows & (s[1:] == s[:-1] + 1) & (c[1:] == c[:-1])
    return {"values": len(j), "bytes": j.nbytes, "seconds_median": statistics.median(times), "seconds": times,
            "us_per_value": 1e6 * statistics.median(times) / max(len(j), 1), "pairs": len(s),
            "following_share": float(guessed.sum()) / max(int(follows.sum()), 1),
            "undecided": int(np.count_nonzero(np.frombuffer(status, dtype=np.uint8)))}


def cmd_cli(a) -> dict:
    """``video-analytics plays`` as a user runs it (its own process, start-up included) on a fresh data root:
    wall time, and the peak RSS of its process tree (sampled) and of its largest process."""

    env = {"ARROW_DEFAULT_MEMORY_POOL": "system", **os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}",
           "AIRFLOW_CONN_VIDEO_REDIS": f"redis://127.0.0.1:{REDIS_PORT}/{a.redis_db}",
           "AIRFLOW_CONN_VIDEO_MYSQL": f"mysql://video:video@127.0.0.1:3306/{a.mysql_db}"}
    env.pop("AIRFLOW_CONN_VIDEO_MONGO", None)
    tmp = tempfile.mkdtemp(prefix="bench_plays_cli_")
    try:
        cli = str(Path(sys.executable).parent / "video-analytics")
        if a.history:  # the day before, untimed: DAY's rollup and verify then fold onto a kept state
            h = subprocess.run([cli, "plays", "--date", HISTORY_DAY, "--data-root", tmp], env=env,
                               capture_output=True, text=True)
            if h.returncode:
                raise SystemExit(f"video-analytics plays --date {HISTORY_DAY} failed ({h.returncode}): "
                                 f"{h.stderr[-3000:]}")
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        p = subprocess.Popen([cli, "plays", "--date", DAY, "--data-root", tmp], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        tree = _TreeRss(p.pid)
        out, err = p.communicate()
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the command and its decoders (each waited for)
        cpu = {"user": ru1.ru_utime - ru0.ru_utime, "system": ru1.ru_stime - ru0.ru_stime}
        peak_tree = tree.stop()
        largest = tree.largest / 2**20
        if p.returncode:
            raise SystemExit(f"video-analytics plays failed ({p.returncode}): {err[-3000:]}")
        rep = json.loads(out)
        ing = rep["ingest"]
        return {"plays": a.n, "wall_s": wall, "plays_per_s": a.n / wall, "cpu_s": cpu, "peak_rss_mb_tree": peak_tree,
                "peak_rss_mb_largest_process": largest, "ingest_s": ing["seconds"],
                "rollup_s": rep["rollup"].get("seconds"), "verify_ok": all(c["ok"] for c in rep["verify"]), "history": a.history,
                "ingested": ing["ingested"], "distinct_J": ing["distinct_segment_values"],
                "decoder_processes": ing["decoder_processes"], "decoder_peak_rss_mb": ing["decoder_peak_rss_mb"],
                "redis_round_trips_ingest": ing["redis_round_trips"],
                "redis_rt_per_1000_ingest": 1000 * ing["redis_round_trips"] / a.n}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _reset_caches(db: int) -> None:
    """What ingest_plays writes to Redis (play-id counters and reservations, category cache): removed, so
    every timed run starts from the freshly generated state."""
    from video_analytics.conventions import KID_HASH, PLAYID_HASH, reservation_key

    _redis(db).delete(PLAYID_HASH, KID_HASH, reservation_key(DAY), reservation_key(HISTORY_DAY))


def cmd_legacy(a) -> dict:
    import mongomock

    from tests.support import mongomock_shim

    mongomock_shim.install()
    from tests.support.legacy_oracle import LegacyJob

    _instrument()
    r = _redis(a.redis_db)
    job = LegacyJob(r, mongomock.MongoClient()["video"], _mysql(a.mysql_db), lrem=True)
    t0 = time.perf_counter()
    job.run_day(DAY)
    dt = time.perf_counter() - t0
    return {"plays": a.n, "seconds": dt, "plays_per_s": a.n / dt, "redis_rt_per_1000": 1000 * Counts.redis / a.n,
            "mongo_calls_per_1000": 1000 * (Counts.update + Counts.find) / a.n,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _child(*args) -> dict:
    env = {"ARROW_DEFAULT_MEMORY_POOL": "system", **os.environ, "PYTHONPATH": str(ROOT)}  # as scripts/env.sh
    out = subprocess.run([sys.executable, __file__, *map(str, args)], capture_output=True, text=True, env=env,
                         check=False)
    if out.returncode:
        raise SystemExit(out.stderr[-4000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--plays", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--legacy-plays", type=int, nargs="*", default=[20_000])
    p.add_argument("--publish-max", type=int, default=100_000, help="publish to mongomock up to this size")
    p.add_argument("--redis-db", type=int, default=int(os.environ.get("BENCH_REDIS_DB", "13")))
    p.add_argument("--legacy-redis-db", type=int, default=int(os.environ.get("BENCH_LEGACY_REDIS_DB", "12")))
    p.add_argument("--runs", type=int, default=1, help="timed runs per size, on one generated day")
    p.add_argument("--floor", action="store_true", help="also time the raw Redis snapshot alone")
    p.add_argument("--floor-batch", type=int, default=None,
                   help="keys per MGET pipeline in --floor (default: ingest_plays.MGET_BATCH)")
    p.add_argument("--chunk", type=int, default=0, help="ingest_plays chunk (0: its default)")
    p.add_argument("--workers", type=int, default=-1, help="ingest_plays decoder processes (-1: its default)")
    p.add_argument("--mysql-db", default="test_bench_plays")
    p.add_argument("--stage", choices=["gen", "new", "legacy", "floor", "rollup", "cli", "parse"])
    p.add_argument("--model", choices=["realistic", "pooled"], default="realistic",
                   help="sample K_J: the viewing model (default) or the pooled best case (few distinct values)")
    p.add_argument("--cli", action="store_true",
                   help="also time `video-analytics plays` end to end (ingest, rollup, verify, start-up) per run")
    p.add_argument("--root", help="data root (--stage rollup)")
    p.add_argument("--parse-text", choices=["as-is", "spaces", "seeks"], default="as-is",
                   help="--stage parse: the day's K_J as they are, or rewritten with spaces or a seek between pairs")
    p.add_argument("--rollup-process", action="store_true",
                   help="run rollup_videos in its own process, as its Airflow task does (default: after ingest, "
                        "in the same process)")
    p.add_argument("--n", type=int)
    p.add_argument("--history", action="store_true",
                   help=f"gen: also the day before ({HISTORY_DAY}); cli: run it first, untimed, so that the timed "
                        "day's rollup and verify fold onto history")
    p.add_argument("--publish", action="store_true")
    a = p.parse_args(argv)
    if a.floor_batch is None:
        from include.plays.ingest_plays import MGET_BATCH

        a.floor_batch = MGET_BATCH
    if a.stage:
        print(json.dumps({"gen": cmd_gen, "new": cmd_new, "legacy": cmd_legacy, "floor": cmd_floor,
                          "rollup": cmd_rollup, "cli": cmd_cli, "parse": cmd_parse}[a.stage](a),
                         default=str))
        return 0
    results = {"new": [], "floor": [], "legacy": [], "cli": [], "gen": []}
    for n in a.plays:
        gen = _child("--stage", "gen", "--n", n, "--redis-db", a.redis_db, "--mysql-db", a.mysql_db, "--model", a.model)
        results["gen"].append(gen)
        print(json.dumps({"gen": gen, "distinct_kj_share": gen["distinct_kj_share"]}, default=str), flush=True)
        extra = ["--publish"] if n <= a.publish_max else []
        for run in range(a.runs):
            if a.floor:
                res = _child("--stage", "floor", "--n", n, "--redis-db", a.redis_db, "--floor-batch", a.floor_batch)
                res["run"] = run
                results["floor"].append(res)
                print(json.dumps({"floor": res}, default=str), flush=True)
            _reset_caches(a.redis_db)
            res = _child("--stage", "new", "--n", n, "--redis-db", a.redis_db, "--mysql-db", a.mysql_db,
                         "--chunk", a.chunk, "--workers", a.workers, *extra,
                         *(["--rollup-process"] if a.rollup_process else []))
            res["generate_s"] = gen["seconds"]
            res["run"] = run
            res["model"], res["distinct_kj_share"] = a.model, gen["distinct_kj_share"]
            results["new"].append(res)
            print(json.dumps(res, default=str), flush=True)
            if a.cli:
                _reset_caches(a.redis_db)
                res = _child("--stage", "cli", "--n", n, "--redis-db", a.redis_db, "--mysql-db", a.mysql_db)
                res.update(run=run, model=a.model, distinct_kj_share=gen["distinct_kj_share"])
                results["cli"].append(res)
                print(json.dumps({"cli": res}, default=str), flush=True)
    for n in a.legacy_plays or []:
        _child("--stage", "gen", "--n", n, "--redis-db", a.legacy_redis_db, "--mysql-db", a.mysql_db, "--model", a.model)
        res = _child("--stage", "legacy", "--n", n, "--redis-db", a.legacy_redis_db, "--mysql-db", a.mysql_db)
        results["legacy"].append(res)
        print(json.dumps(res, default=str), flush=True)
    for db in {a.redis_db, a.legacy_redis_db}:
        _redis(db).flushdb(asynchronous=True)
    print(json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
