"""``ingest_plays`` + ``rollup_videos`` as Celery tasks of the local stack against the CLI's same stages (issue 24).

Starts a stack of its own (``scripts/airflow_stack.sh``, as ``tests/integration/test_airflow_stack.py`` does:
free ports, its own AIRFLOW_HOME, PostgreSQL metadata database, data root, Celery queue and worker names),
then for each run a new day ``D`` (consecutive days from 2014-06-10, so both sides hold the same history):

1. ``video-analytics sample-data`` for ``D`` into the CLI's Redis database and into the stack's (the same
   seeded, realistic plays: ``include/viewing_model.py``);
2. ``video-analytics plays --date D`` on the CLI's data root: its ingest and rollup seconds (the reports'
   ``seconds.total``) and its wall time;
3. a DAG run for ``D`` on the stack: the task instances' durations of ``plays.ingest_plays`` and
   ``plays.rollup_videos`` (start to end as Airflow records them, the task process's start-up included) and
   the ingest report's own ``seconds.total`` (its XCom).

The ratio is stack / CLI over ingest + rollup; the medians of the runs are printed last. The documents of
both data roots are compared at the end (``video-analytics export-docs``).

    . scripts/env.sh && .venv/bin/python bench/bench_plays_airflow.py --plays 200000 --runs 3 \\
        --redis-db 7 --cli-redis-db 8
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration import test_airflow_stack as st  # noqa: E402 - the stack test's helpers
from tests.support.servers import free_port  # noqa: E402

FIRST_DAY = dt.date(2014, 6, 10)


def _stack_env(tmp: Path, redis_db: int, mysql_db: str, pg_db: str, plays_workers: int) -> dict:
    env = st._home_env(os.environ, tmp / "home", tmp / "data", redis_db, mysql_db, pg_db)
    tag = uuid.uuid4().hex[:6]
    env.update({
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{st.BROKER_REDIS_DB}",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"bench_plays_{tag}",
        "AIRFLOW_STACK_WORKER_PREFIX": f"b{tag}-worker",
        "WORKERS": str(plays_workers),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__CORE__PARALLELISM": str(2 * plays_workers),
        "AIRFLOW_STACK_TIMEOUT": "300",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "append": True,
                                                       "log_file_path": str(tmp / "openlineage.jsonl")}),
        **st._server_ports("127.0.0.1", free_port()),
    })
    env.pop("VIDEO_ASSET_DATA_ROOT", None)
    return env


def _sample(env: dict, day: str, plays: int, log_dir: str) -> None:
    st._run([st.BIN / "video-analytics", "sample-data", "--date", day, "--log-dir", log_dir, "--users", "60",
             "--plays", str(plays)], env, timeout=1800)


def _cli(env: dict, day: str, root: Path) -> dict:
    t0 = time.perf_counter()
    res = st._run([st.BIN / "video-analytics", "plays", "--date", day, "--data-root", root], env, timeout=3600)
    wall = time.perf_counter() - t0
    rep = json.loads(res.stdout)
    ingest, rollup = rep["ingest"]["seconds"]["total"], rep["rollup"]["seconds"]["total"]
    return {"wall_s": wall, "ingest_s": ingest, "rollup_s": rollup, "stages_s": ingest + rollup,
            "decoder_processes": rep["ingest"]["decoder_processes"]}


def _duration(ti: dict) -> float:
    start = dt.datetime.fromisoformat(ti["start_date"])
    return (dt.datetime.fromisoformat(ti["end_date"]) - start).total_seconds()


def _stack_run(api, env: dict, day: str) -> dict:
    run = st._trigger(api, day)
    states = st._wait_runs(api, [run], timeout=3600)
    if states[run] != "success":
        raise SystemExit(f"DAG run {run} ended {states[run]}")
    tis = {t["task_id"]: t for t in st._task_instances(api, run)}
    ingest, rollup = tis["plays.ingest_plays"], tis["plays.rollup_videos"]
    xcom = api.get(f"/api/v2/dags/{st.DAG_ID}/dagRuns/{run}/taskInstances/plays.ingest_plays/xcomEntries/return_value")
    rep = xcom["value"] if isinstance(xcom["value"], dict) else json.loads(xcom["value"])
    return {"run": run, "ingest_s": _duration(ingest), "rollup_s": _duration(rollup),
            "stages_s": _duration(ingest) + _duration(rollup), "ingest_work_s": rep["seconds"]["total"],
            "decoder_processes": rep["decoder_processes"], "hostname": ingest["hostname"],
            "rollup_after_ingest_s": (dt.datetime.fromisoformat(rollup["start_date"])
                                      - dt.datetime.fromisoformat(ingest["end_date"])).total_seconds()}


def _load() -> float:
    return os.getloadavg()[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--plays", type=int, default=200_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--redis-db", type=int, default=int(os.environ.get("BENCH_REDIS_DB", "13")),
                   help="the stack's Redis database (flushed)")
    p.add_argument("--cli-redis-db", type=int, default=int(os.environ.get("BENCH_CLI_REDIS_DB", "14")),
                   help="the CLI's Redis database (flushed)")
    p.add_argument("--mysql-db", default="test_bench_plays_airflow")
    p.add_argument("--workers", type=int, default=1, help="Celery workers of the stack (2 task slots each)")
    p.add_argument("--out", default=str(ROOT / "bench" / "out" / "plays_airflow.json"))
    a = p.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench_plays_airflow_"))
    pg, pg_db = st._pg_admin(), f"airflow_bench_{uuid.uuid4().hex[:8]}"
    with pg.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{pg_db}"')
    mysql = st._mysql_conn()
    mysql.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{a.mysql_db}`")  # noqa: S608 - a test_* name
    env = _stack_env(tmp, a.redis_db, a.mysql_db, pg_db, a.workers)
    cli_env = {**env, "AIRFLOW_CONN_VIDEO_REDIS": f"redis://127.0.0.1:6379/{a.cli_redis_db}"}
    cli_root = tmp / "cli_root"
    for db in (a.redis_db, a.cli_redis_db):
        st._redis(db).flushdb()
    results: list[dict] = []
    try:
        st._run([st.STACK, "init"], env, timeout=600)
        st._run([st.BIN / "airflow", "pools", "set", "video_publish", "1", "MongoDB publishing"], env, timeout=300)
        st._run([st.STACK, "up"], env, timeout=600)
        api = st.Api(env["AIRFLOW__API__BASE_URL"])
        st._wait_for_dag(api, timeout=300)
        for i in range(a.runs):
            day = (FIRST_DAY + dt.timedelta(days=i)).isoformat()
            _sample(cli_env, day, a.plays, str(tmp / "cli_logs"))
            _sample(env, day, a.plays, env["AIRFLOW_VAR_LOG_DIR"])
            row = {"day": day, "plays": a.plays, "load_at_start": round(_load(), 2)}
            row["cli"] = _cli(cli_env, day, cli_root)
            row["stack"] = _stack_run(api, env, day)
            row["ratio"] = row["stack"]["stages_s"] / row["cli"]["stages_s"]
            results.append(row)
            print(json.dumps(row), flush=True)
        docs_same = st._export(env, Path(env["AIRFLOW_VAR_DATA_ROOT"]), tmp / "export_stack") == \
            st._export(cli_env, cli_root, tmp / "export_cli")
    finally:
        down = st._run([st.STACK, "down"], env, timeout=300, check=False)
        sys.stderr.write(down.stderr[-2000:])
        for db in (a.redis_db, a.cli_redis_db):
            st._redis(db).flushdb()
        st._drop_broker_keys(env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"])
        with pg.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
        mysql.cursor().execute(f"DROP DATABASE IF EXISTS `{a.mysql_db}`")  # noqa: S608
        shutil.rmtree(tmp, ignore_errors=True)

    def med(side: str, key: str) -> float:
        return statistics.median(r[side][key] for r in results)

    summary = {"plays": a.plays, "runs": len(results), "documents_identical": docs_same,
               "median": {"cli_ingest_s": med("cli", "ingest_s"), "cli_rollup_s": med("cli", "rollup_s"),
                          "cli_wall_s": med("cli", "wall_s"), "stack_ingest_s": med("stack", "ingest_s"),
                          "stack_rollup_s": med("stack", "rollup_s"), "stack_ingest_work_s": med("stack", "ingest_work_s"),
                          "ratio": statistics.median(r["ratio"] for r in results)}}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"runs": results, "summary": summary}, indent=2))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
