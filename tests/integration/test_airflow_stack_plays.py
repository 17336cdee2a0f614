"""``ingest_plays`` and ``rollup_videos`` as Celery tasks of the real local stack (issue 24): the decoder
processes start inside a Celery worker's task, and the day's documents equal the CLI's.

A stack of its own (``test_airflow_stack``'s fixtures: free ports, its own metadata DB, Redis database,
MariaDB database and Celery queue), one day of realistic sample plays with more than one chunk of keys
(``ingest_plays`` starts decoder processes only then). While the ingest runs, the test polls the process
table for ``python -P -m include.plays.decoders`` and walks each one's ancestors up to a worker of this stack.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

import pytest

from include.plays.ingest_plays import CHUNK
from tests.integration import test_airflow_stack as base
from tests.integration.test_airflow_stack import (
    BIN,
    DAG_ID,
    STACK_REDIS_DB,
    _export,
    _redis,
    _run,
    _task_instances,
    _trigger,
    _wait_runs,
)

# the stack test's fixtures (a stack of this module's own: they are module-scoped)
pg_databases, mysql_scratch, stack = base.pg_databases, base.mysql_scratch, base.stack

pytestmark = pytest.mark.airflow_stack

DAY = "2014-06-03"
PLAYS = 3 * CHUNK  # three chunks of new keys: the ingest runs its decoder processes
DECODER_MODULE = "include.plays.decoders"


def _sample(env: dict, day: str) -> None:
    _run([BIN / "video-analytics", "sample-data", "--date", day, "--log-dir", env["AIRFLOW_VAR_LOG_DIR"],
          "--users", "60", "--plays", str(PLAYS)], env, timeout=600)


def _worker_pids(stack) -> dict[int, str]:
    """Pid of each Celery worker's main process (scripts/airflow_stack.sh records them) -> its name."""
    stack_dir = Path(stack.env["AIRFLOW_HOME"]) / "stack"
    prefix = stack.env["AIRFLOW_STACK_WORKER_PREFIX"]
    return {int(p.read_text()): p.stem for p in stack_dir.glob(f"{prefix}*.pid")}


class DecoderWatch:
    """A thread that polls the process table every 50 ms and keeps every decoder process it sees, with the
    pids and command lines of its ancestors (read while the decoder lives)."""

    def __init__(self) -> None:
        self.seen: dict[int, dict] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()

    def _poll(self) -> None:
        import psutil

        while not self._stop.is_set():
            for proc in psutil.process_iter(["pid", "cmdline"]):
                cmd = proc.info["cmdline"] or []
                if proc.info["pid"] in self.seen or DECODER_MODULE not in cmd:
                    continue
                try:
                    chain = [(p.pid, " ".join(p.cmdline())) for p in proc.parents()]
                except psutil.Error:
                    continue
                self.seen[proc.info["pid"]] = {"cmdline": cmd, "ancestors": chain}
            self._stop.wait(0.05)

    def stop(self) -> dict[int, dict]:
        self._stop.set()
        self._t.join()
        return self.seen


def _is_decoder(pid: int) -> bool:
    import psutil

    try:
        return DECODER_MODULE in psutil.Process(pid).cmdline()
    except psutil.Error:
        return False


def _xcom(stack, run_id: str, task_id: str) -> dict:
    entry = stack.api.get(f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value")
    value = entry["value"]
    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture(scope="module")
def cli_docs(stack):
    """The day through ``video-analytics plays`` (the same sample data, the stack's Redis and MariaDB, a data
    root of its own): its exported documents and ingest report. Redis is emptied again after it."""
    _sample(stack.env, DAY)
    cli_root = stack.tmp / "cli_root"
    res = _run([BIN / "video-analytics", "plays", "--date", DAY, "--data-root", cli_root], stack.env, timeout=900)
    report = json.loads(res.stdout)
    _redis(STACK_REDIS_DB).flushdb()  # the play ids and categories the CLI reserved and cached
    return {"docs": _export(stack.env, cli_root, stack.tmp / "export_cli"), "ingest": report["ingest"]}


def test_ingest_runs_its_decoders_inside_a_celery_worker_and_matches_the_cli(stack, cli_docs):
    workers = _worker_pids(stack)
    assert len(workers) == int(stack.env["WORKERS"]), workers
    _sample(stack.env, DAY)
    watch = DecoderWatch()
    try:
        run = _trigger(stack.api, DAY)
        assert _wait_runs(stack.api, [run], timeout=900) == {run: "success"}
    finally:
        seen = watch.stop()
    tis = {t["task_id"]: t for t in _task_instances(stack.api, run)}
    ingest_ti, rollup_ti = tis["plays.ingest_plays"], tis["plays.rollup_videos"]
    assert ingest_ti["state"] == rollup_ti["state"] == "success"

    report = _xcom(stack, run, "plays.ingest_plays")
    expected = min(2, os.cpu_count() or 1)
    assert report["decoder_processes"] == expected, report
    assert report["chunks"] == 3 and report["new_keys"] > CHUNK, report
    assert cli_docs["ingest"]["decoder_processes"] == expected

    # the decoders seen while the ingest ran: each a child of the task, under a Celery worker of this stack
    ours = {pid: d for pid, d in seen.items()
            if workers.keys() & {p for p, _ in d["ancestors"]}}
    assert len(ours) >= expected, (workers, seen)
    for pid, d in ours.items():
        assert d["cmdline"][1:4] == ["-P", "-m", DECODER_MODULE], (pid, d)  # -P: the task's modules, not the cwd's
        parent_pid, parent_cmd = d["ancestors"][0]
        assert int(d["cmdline"][4]) == parent_pid, d  # its parent: the task process that started it
        worker = next(workers[p] for p, _ in d["ancestors"] if p in workers)
        assert ingest_ti["hostname"].startswith(f"{worker}@"), (ingest_ti["hostname"], worker, d)
        sys.stderr.write(f"decoder {pid} <- " + " <- ".join(f"{p} {c[:60]!r}" for p, c in d["ancestors"][:4]) + "\n")

    left = [pid for pid in ours if _is_decoder(pid)]
    assert not left, f"decoder processes left running after the task: {left}"

    # the day's documents are the CLI's
    docs = _export(stack.env, stack.data_root, stack.tmp / "export_stack")
    assert docs and docs == cli_docs["docs"]
    assert report["ingested"] == cli_docs["ingest"]["ingested"]
    sys.stderr.write(f"stack: ingest_plays {ingest_ti['duration']:.1f} s, rollup_videos {rollup_ti['duration']:.1f} s "
                     f"(CLI ingest {cli_docs['ingest']['seconds']['total']:.1f} s)\n")
