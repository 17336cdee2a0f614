"""The DAG's online-time task group end to end, next to the CLI, on the same generated week.

Runs ``airflow dags test daily_analytics 2014-01-11`` on bench/out/logs-<size> (made by
bench_online_time.py) with a fresh data root; the plays tasks, ``wait_for_plays``, ``verify`` and
``cleanup`` are marked successful (``--mark-success-pattern``), so the run is ``wait_for_logs``
then the online-time group: ``sort_and_partition``, the mapped ``compute_shard`` tasks and
``merge_report``. The figure is the group's span from the metadata DB: first start of
``sort_and_partition`` to the end of ``merge_report`` (the sensor done), plus each task's
duration; the whole command's wall time is given too. Then the same three task functions called
directly in one fresh process (no Airflow: the group's own work), then the CLI on the same files;
the DAG's and the CLI's results are compared.

``--summaries`` (issue 25: every log parsed once) measures instead, in each run on the same files: the
three stages called directly on the full path (``full``: what the group did before, every file parsed into
event shards), from a fresh data root (``cold``: every day parsed into its summary, shards over them) and
from a data root holding the earlier days' summaries (``warm``: day D only parsed); then the DAG itself,
cold and warm (``dags test``); every result is compared with the full path's.

Needs the project environment (``. scripts/env.sh``) and an initialised metadata DB.
Usage: ``.venv/bin/python bench/bench_dag_online_time.py [--size 10M] [--runs 3] [--shards 8|auto]
[--summaries]``.
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DAY = "2014-01-11"
BIN = Path(sys.executable).parent
SKIP = r"^(wait_for_plays|plays\..*|verify|cleanup)$"


def group_times(run_id: str) -> dict:
    """Task durations and the online-time group's span of a DAG run, from the metadata DB."""
    from sqlalchemy import create_engine, text

    eng = create_engine(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    with eng.connect() as c:
        rows = c.execute(text(
            "SELECT task_id, map_index, start_date, end_date FROM task_instance "
            "WHERE dag_id = 'daily_analytics' AND run_id = :r AND task_id LIKE 'online_time.%'"), {"r": run_id}).all()
    eng.dispose()
    start = min(r.start_date for r in rows if r.task_id == "online_time.sort_and_partition")
    stop = max(r.end_date for r in rows if r.task_id == "online_time.merge_report")
    per = {}
    for r in rows:
        per.setdefault(r.task_id.split(".", 1)[1], []).append((r.end_date - r.start_date).total_seconds())
    return {"span": (stop - start).total_seconds(),
            "tasks": {k: {"n": len(v), "sum": sum(v), "max": max(v)} for k, v in per.items()}}


def run_dag(log_dir: str, root: str, shards: int | None) -> dict:
    env = os.environ.copy()
    # the asset URIs stay those of the environment's data root: a metadata DB keeps one URI per
    # asset name, so a URI per temporary root would leave merge_report's outlet inactive (include/assets.py)
    env.setdefault("VIDEO_ASSET_DATA_ROOT", os.environ.get("AIRFLOW_VAR_DATA_ROOT") or root)
    env.update({"AIRFLOW_VAR_DATA_ROOT": root, "AIRFLOW_VAR_LOG_DIR": log_dir, "VIDEO_DEADLINE": "off"})
    env.pop("AIRFLOW_CONN_VIDEO_MONGO", None)
    cmd = [str(BIN / "airflow"), "dags", "test", "daily_analytics", DAY, "--mark-success-pattern", SKIP,
           "--conf", json.dumps({} if shards is None else {"shards": shards})]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(p.stdout[-3000:] + p.stderr[-3000:])
    from sqlalchemy import create_engine, text

    eng = create_engine(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    with eng.connect() as c:
        run_id = c.execute(text("SELECT run_id FROM dag_run WHERE dag_id = 'daily_analytics' "
                                "ORDER BY id DESC LIMIT 1")).scalar_one()
    eng.dispose()
    out = group_times(run_id)
    out["wall"] = wall
    return out


def run_direct(log_dir: str, root: str, shards: int | None, summaries: bool = False) -> float:
    """The three task functions called one after the other in a fresh process, without Airflow:
    the group's own work (seconds, imports excluded). ``summaries``: as the DAG calls them (shards over
    the day summaries); else the full path (event shards), as the group ran before issue 25."""
    code = (
        "import sys, time, datetime as dt\n"
        "from include.online_time.sort_and_partition import sort_and_partition\n"
        "from include.online_time.compute_shard import compute_shard\n"
        "from include.online_time.merge_report import merge_report\n"
        "from include.storage import DataRoot\n"
        "from include.tasks import task_slots\n"
        "from video_analytics.online_time import Rules\n"
        "shards = None if sys.argv[4] == 'auto' else int(sys.argv[4]); slots = task_slots()\n"
        "kw = {'summaries': Rules()} if sys.argv[5] == 'summaries' else {}\n"
        "end = dt.date.fromisoformat(sys.argv[3]); root = DataRoot(sys.argv[2]); t0 = time.perf_counter()\n"
        "part = sort_and_partition(root, sys.argv[1], end, shards=shards, max_shards=slots, **kw)\n"
        "merge_report(root, end, [compute_shard(root, s, end) for s in part['shards']])\n"
        "print(time.perf_counter() - t0)\n")
    # cwd outside the repository: the code comes from the installed package (or PYTHONPATH)
    p = subprocess.run([sys.executable, "-c", code, log_dir, root, DAY, "auto" if shards is None else str(shards),
                        "summaries" if summaries else "full"],
                       check=True,
                       capture_output=True, text=True, timeout=1800, cwd=os.path.dirname(root))
    return float(p.stdout.strip().splitlines()[-1])


def warm_root(cold: str, warm: str) -> None:
    """``warm``: the day summaries of ``cold`` but day D's (so a run parses day D only)."""
    src = Path(cold) / "online_time" / "summaries"
    dst = Path(warm) / "online_time" / "summaries"
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if not f.name.startswith(DAY):
            shutil.copy2(f, dst / f.name)


def partition(root: str) -> dict:
    return json.loads((Path(root) / "online_time" / DAY / "partition.json").read_text())


def summaries_run(log_dir: str, tmp: str, shards: int | None, dag: bool = True) -> dict:
    """One run of the issue-25 scenarios: ``{scenario: {"s", "days_parsed", "identical"}}``."""
    import pyarrow.parquet as pq

    def result(root: str):
        return pq.read_table(os.path.join(root, "online_time", DAY, "online_time.parquet"))

    out = {}
    for name, summ in (("direct_full", False), ("direct_cold", True), ("direct_warm", True)):
        root = os.path.join(tmp, name)
        if name == "direct_warm":
            warm_root(os.path.join(tmp, "direct_cold"), root)
        out[name] = {"s": run_direct(log_dir, root, shards, summ)}
    for name in ("dag_cold", "dag_warm") if dag else ():
        root = os.path.join(tmp, name)
        if name == "dag_warm":
            warm_root(os.path.join(tmp, "dag_cold"), root)
        d = run_dag(log_dir, root, shards)
        out[name] = {"s": d["span"], "wall": d["wall"], "tasks": d["tasks"]}
    want = result(os.path.join(tmp, "direct_full"))
    for name, r in out.items():
        part = partition(os.path.join(tmp, name))
        r.update(days_parsed=len(part.get("days_parsed", part["files"])), mode=part.get("mode", "full"),
                 identical=result(os.path.join(tmp, name)).equals(want))
    return out


def summaries_main(args, log_dir: str, shards: int | None) -> int:
    load = Path("/proc/loadavg").read_text().split()[0]
    runs = []
    for k in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="dag-summ-", dir=HERE / "out") as tmp:
            runs.append(summaries_run(log_dir, tmp, shards, not args.direct_only))
        print(f"run {k + 1}: " + ", ".join(f"{n} {r['s']:.2f}s ({r['days_parsed']} parsed)" for n, r in runs[-1].items()),
              file=sys.stderr, flush=True)
    med = {n: statistics.median(r[n]["s"] for r in runs) for n in runs[0]}
    dags = [n for n in ("dag_cold", "dag_warm") if n in runs[0]]
    res = {"size": args.size, "loadavg": load, "loadavg_end": Path("/proc/loadavg").read_text().split()[0],
           "runs": args.runs, "shards": args.shards, "median_s": med,
           "all_s": {n: [r[n]["s"] for r in runs] for n in runs[0]},
           "days_parsed": {n: runs[-1][n]["days_parsed"] for n in runs[0]},
           "modes": {n: runs[-1][n]["mode"] for n in runs[0]},
           "identical": all(r[n]["identical"] for r in runs for n in r),
           "dag_wall": {n: runs[-1][n]["wall"] for n in dags}, "tasks": {n: runs[-1][n]["tasks"] for n in dags},
           "cold_over_full": med["direct_cold"] / med["direct_full"],
           "warm_over_full": med["direct_warm"] / med["direct_full"]}
    if dags:
        res["dag_warm_over_cold"] = med["dag_warm"] / med["dag_cold"]
    (HERE / "out" / f"dag_online_time_summaries_{args.size}{args.tag}.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return 0


def run_cli(log_dir: str, out: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(BIN / "video-analytics"), "online-time", "--log-dir", log_dir, "--end", DAY, "--out", out],
                   check=True, capture_output=True, timeout=1800)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="10M")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--shards", default="8",
                    help="an explicit shard count, or 'auto': no `shards` param, the DAG's default choice")
    ap.add_argument("--tag", default="")
    ap.add_argument("--summaries", action="store_true",
                    help="issue 25: the full path vs day summaries cold and warm, directly and in the DAG")
    ap.add_argument("--direct-only", action="store_true", help="with --summaries: no `dags test` runs")
    args = ap.parse_args()
    shards = None if args.shards == "auto" else int(args.shards)
    import pyarrow.parquet as pq

    log_dir = str(HERE / "out" / f"logs-{args.size}")
    if not (Path(log_dir) / "generated.json").exists():
        sys.exit(f"{log_dir} missing: run bench/bench_online_time.py --sizes {args.size} first")
    from include.online_time.logs import write_done_markers

    write_done_markers(sorted(str(f) for f in Path(log_dir).glob("*.log")))  # complete: wait_for_logs passes
    if args.summaries:
        return summaries_main(args, log_dir, shards)
    dags, clis, same = [], [], True
    load = Path("/proc/loadavg").read_text().split()[0]
    for k in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="dag-", dir=HERE / "out") as tmp:
            d = run_dag(log_dir, os.path.join(tmp, "root"), shards)
            d["direct"] = run_direct(log_dir, os.path.join(tmp, "direct"), shards)
            cli_out = os.path.join(tmp, "cli.parquet")
            c = run_cli(log_dir, cli_out)
            dag_t = pq.read_table(os.path.join(tmp, "root", "online_time", DAY, "online_time.parquet"))
            same &= dag_t.equals(pq.read_table(cli_out))
        dags.append(d)
        clis.append(c)
        print(f"run {k + 1}: dag group {d['span']:.2f}s (dags test wall {d['wall']:.1f}s, "
              f"the three stages without Airflow {d['direct']:.2f}s) "
              f"{json.dumps(d['tasks'])}; cli {c:.2f}s", file=sys.stderr, flush=True)
    res = {"size": args.size, "loadavg": load, "runs": args.runs, "shards": args.shards,
           "dag_span": statistics.median(d["span"] for d in dags), "dag_spans": [d["span"] for d in dags],
           "dags_test_wall": statistics.median(d["wall"] for d in dags),
           "direct": statistics.median(d["direct"] for d in dags), "directs": [d["direct"] for d in dags],
           "cli": statistics.median(clis), "clis": clis, "identical": same, "tasks": dags[-1]["tasks"]}
    res["ratio"] = res["dag_span"] / res["cli"]
    (HERE / "out" / f"dag_online_time{args.tag}.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
