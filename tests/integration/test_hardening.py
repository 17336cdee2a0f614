"""Hostile input and careless operation (issue: hardening), each with its regression test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from include.cli import EXIT_TRANSIENT
from include.plays import ingest_write as ingest_mod
from include.plays.documents import all_documents, export_docs
from include.plays.ingest_plays import ingest_plays
from include.plays.lease import DayBusy, day_lease, exclusive
from include.plays.rollup_videos import rollup_videos
from include.procs import INGEST_SPILL_PREFIX, remove_stale_spill_dirs
from include.procs import ONLINE_SPILL_PREFIX as SPILL_PREFIX
from include.storage import DataRoot
from tests.support.plays import GOOD_S, categories, doc_mismatches, mysql_hook, put_play, run_day
from video_analytics.conventions import lease_key, plays_path, reservation_key

BIN = Path(sys.prefix) / "bin" / "video-analytics"
DAY = "20140107"


def _plays(r, n=20, day=DAY, vids=("1000001", "1000002")):
    for i in range(n):
        put_play(r, day, f"{vids[i % len(vids)]}_{day}{i:04d}", s={**GOOD_S, "flow": float(i + 1)})


def test_export_confines_every_file_to_out(redis_db, mysql_db, tmp_path):
    categories(mysql_db, [], [])
    _plays(redis_db)
    for bad in ("ab/cdef_1", "/tmp/xx_1", "..\\x\\y_1"):
        put_play(redis_db, DAY, bad)
    root = DataRoot(str(tmp_path / "root"))
    out = run_day(root, redis_db, mysql_hook(mysql_db), DAY, max_quarantine_rate=0.5)
    assert out["ingest"]["quarantine_reasons"] == {"bad_vid": 3}
    export_docs(root, str(tmp_path / "out"))
    written = [p for p in tmp_path.rglob("*.jsonl") if "root" not in p.relative_to(tmp_path).parts]
    assert written and all(p.parent == tmp_path / "out" for p in written)
    # a data root written before vids were checked: export refuses instead of escaping --out
    t = root.read_table(plays_path(DAY, "plays.parquet"))
    import pyarrow as pa

    vid = pa.array(["../../evil"] * t.num_rows)
    root.write_table(t.set_column(t.schema.get_field_index("vid"), "vid", vid), plays_path(DAY, "plays.parquet"))
    with pytest.raises(ValueError, match="not valid file names"):
        export_docs(root, str(tmp_path / "out2"))
    assert not (tmp_path / "evil_play.jsonl").exists() and not (tmp_path.parent / "evil_play.jsonl").exists()


def test_same_day_twice_at_once_is_excluded(redis_db, mysql_db, tmp_path):
    categories(mysql_db, [], [])
    _plays(redis_db)
    root, hook = DataRoot(str(tmp_path / "root")), mysql_hook(mysql_db)
    results, errors = [], []
    gate = threading.Barrier(2)

    def run():
        gate.wait()
        try:
            results.append(exclusive(redis_db, DAY, "ingest_plays", ingest_plays, root, redis_db, hook, DAY))
        except DayBusy as exc:
            errors.append(str(exc))

    with day_lease(redis_db, DAY, "holder"):  # the first run holds the day
        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert len(errors) == 2 and "being processed by" in errors[0] and lease_key(DAY) in errors[0]
    assert redis_db.get(lease_key(DAY)) is None  # released
    assert exclusive(redis_db, DAY, "ingest_plays", ingest_plays, root, redis_db, hook, DAY)["ingested"] == 20


def test_a_dead_holders_lease_expires(redis_db):
    redis_db.set(lease_key(DAY), "host:1:ingest_plays:dead", ex=1)
    with pytest.raises(DayBusy):
        with day_lease(redis_db, DAY, "x"):
            pass
    time.sleep(1.5)
    with day_lease(redis_db, DAY, "x", ttl=3) as lease:
        time.sleep(2.5)  # renewed while held
        assert redis_db.get(lease_key(DAY)) == lease.owner and redis_db.ttl(lease_key(DAY)) > 1


def test_a_crash_after_reserving_ids_reuses_the_reservation(redis_db, mysql_db, tmp_path, monkeypatch):
    categories(mysql_db, [], [])
    _plays(redis_db)
    root, hook = DataRoot(str(tmp_path / "root")), mysql_hook(mysql_db)
    real = ingest_mod.ParquetStream

    class Crash(real):
        def close(self):
            if self.path.endswith("allocation.parquet"):
                raise SystemExit("killed between the reservation and the allocation")
            super().close()

    monkeypatch.setattr(ingest_mod, "ParquetStream", Crash)
    with pytest.raises(SystemExit):
        ingest_plays(root, redis_db, hook, DAY)
    assert redis_db.hgetall("vid_playid") == {"1000001": "10", "1000002": "10"}
    assert redis_db.exists(reservation_key(DAY))
    assert not root.exists(plays_path(DAY, "allocation.parquet"))
    monkeypatch.setattr(ingest_mod, "ParquetStream", real)
    rep = ingest_plays(root, redis_db, hook, DAY)
    assert rep["new_play_ids"] == 20
    ids = sorted(r["playid"] for r in root.read_table(plays_path(DAY, "allocation.parquet")).to_pylist())
    assert ids == sorted(list(range(1, 11)) * 2)  # 1..10 per vid again, not 11..20
    assert redis_db.hgetall("vid_playid") == {"1000001": "10", "1000002": "10"}
    assert not redis_db.exists(reservation_key(DAY))


def test_export_counts_a_day_only_once_its_rollup_is_final(redis_db, mysql_db, tmp_path, monkeypatch):
    from include.plays import totals as totals_mod

    categories(mysql_db, [], [])
    root, hook = DataRoot(str(tmp_path / "root")), mysql_hook(mysql_db)
    _plays(redis_db, day="20140106")
    run_day(root, redis_db, hook, "20140106")
    before = all_documents(root)
    _plays(redis_db, day=DAY)
    ingest_plays(root, redis_db, hook, DAY)
    real = DataRoot.write_json

    def die_at_registry(self, obj, *parts):
        if parts == (totals_mod.REGISTRY,):
            raise SystemExit("killed before the totals registry was written")
        return real(self, obj, *parts)

    monkeypatch.setattr(DataRoot, "write_json", die_at_registry)
    with pytest.raises(SystemExit):
        rollup_videos(root, DAY, redis_db)  # its snapshots are written, the registry is not
    monkeypatch.setattr(DataRoot, "write_json", real)
    assert doc_mismatches(before, all_documents(root)) == []
    rollup_videos(root, DAY, redis_db)
    after = all_documents(root)
    assert after["1000_stat"]["1000001"]["Play"] == before["1000_stat"]["1000001"]["Play"]  # no tables: 0
    assert after["1000_stat"]["1000"]["Traffic"] > before["1000_stat"]["1000"]["Traffic"]


def _cli(*args, env=None):
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_cli_errors_are_one_line_naming_the_connection_or_path(tmp_path):
    env = {"AIRFLOW_CONN_VIDEO_REDIS": "redis://127.0.0.1:1/0"}
    run = _cli("plays", "--date", DAY, "--data-root", str(tmp_path / "r"), env=env)
    assert run.returncode == EXIT_TRANSIENT and run.stdout == ""  # a refused connection: run again later
    lines = [ln for ln in run.stderr.splitlines() if "error:" in ln]
    assert len(lines) == 1 and "video_redis (127.0.0.1:1)" in lines[0], run.stderr
    assert "Traceback" not in run.stderr
    debug = _cli("--debug", "plays", "--date", DAY, "--data-root", str(tmp_path / "r"), env=env)
    assert debug.returncode == EXIT_TRANSIENT and "Traceback" in debug.stderr
    env = {"AIRFLOW_CONN_VIDEO_MYSQL": "mysql://video:video@127.0.0.1:1/video"}
    run = _cli("sample-data", "--date", "2014-01-07", "--log-dir", str(tmp_path / "logs"), "--days", "1",
               "--users", "5", "--plays", "5", env={**env, "AIRFLOW_CONN_VIDEO_REDIS": "redis://127.0.0.1:6379/12"})
    assert run.returncode == EXIT_TRANSIENT and "video_mysql (127.0.0.1:1)" in run.stderr
    assert "Traceback" not in run.stderr
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    run = _cli("export-docs", "--data-root", str(tmp_path / "empty"), "--out", str(blocker / "out"))
    assert run.returncode == 1 and str(blocker) in run.stderr and "Traceback" not in run.stderr
    run = _cli("plays", "--date", "2014-01-32", "--data-root", str(tmp_path / "r"))
    assert run.returncode == 2 and "YYYYMMDD" in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_stale_spill_folders_of_dead_runs_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        for pid in (dead.pid, live.pid):
            d = tmp_path / f"{SPILL_PREFIX}{pid}-abc"
            d.mkdir()
            (d / "s0000-f0000.arrow").write_bytes(b"x" * 1000)
            (tmp_path / f"{INGEST_SPILL_PREFIX}{pid}-20140107-xyz").mkdir()
        (tmp_path / "someone-elses-folder").mkdir()
        assert remove_stale_spill_dirs(str(tmp_path)) == [f"{INGEST_SPILL_PREFIX}{dead.pid}-20140107-xyz",
                                                          f"{SPILL_PREFIX}{dead.pid}-abc"]
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{SPILL_PREFIX}{live.pid}-abc",
                                                                     f"{INGEST_SPILL_PREFIX}{live.pid}-20140107-xyz",
                                                                     "someone-elses-folder"])
    finally:
        live.kill()
        live.wait()


WORKERS = """
import os, sys, time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from include.online_time.pipeline import die_with_parent
ex = ProcessPoolExecutor(2, mp_context=get_context("spawn"), initializer=die_with_parent, initargs=(os.getpid(),))
pids = set()
while len(pids) < 2:
    pids |= {f.result() for f in [ex.submit(time.sleep, 0.2) and ex.submit(os.getpid) for _ in range(4)]}
print(" ".join(map(str, sorted(pids))), flush=True)
time.sleep(120)
"""


DECODERS = """
import os, sys, time
from include.plays.decoders import DecoderPool
pool = DecoderPool(2)
print(" ".join(str(p.pid) for p in pool.procs), flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("script", [WORKERS, DECODERS], ids=["online_time", "plays_decoders"])
def test_workers_die_with_a_killed_parent(script):
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=tempfile.gettempdir())
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 10
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in pids if os.path.exists(f"/proc/{p}") and
                 "Z" not in Path(f"/proc/{p}/stat").read_text().split(")")[-1].split()[0]]
    assert alive == [], f"workers {alive} outlived their parent"


def test_summary_of_a_missing_day_is_one_line_on_stderr(tmp_path):
    run = _cli("summary", "2014-01-07", env={"AIRFLOW_VAR_DATA_ROOT": str(tmp_path)})
    assert run.returncode == 1 and run.stdout == "" and len(run.stderr.strip().splitlines()) == 1
