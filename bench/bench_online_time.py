"""Benchmark of the online-time computation (CONTRACT §1) on a week of generated logs.

Three ways over the same files, each in its own child process (wall time and the peak RSS
of the child and its own children, sampled by psutil every 20 ms):

(a) cli    - ``video-analytics online-time`` (vectorised NumPy parsing, 8 shards, 2 processes)
(b) duckdb - the rules as one DuckDB SQL query over the raw files (bench/online_time_duckdb.sql)
(p) polars - the rules as one lazy Polars query over the raw files (bench/online_time_polars.py)
(c) loop   - plain Python, esProc style: parse, pre-sort by user, then a cursor loop per user

Usage: ``.venv/bin/python bench/bench_online_time.py [--sizes 1M,10M,30M] [--runs 3]``.
Generated logs are cached in bench/out/logs-<size>/.

``--summaries`` instead measures the per-day summaries (issue 25) on a month of logs at the week's
daily rate (32 files; the last 8 are the size's week): today's cold run, the cold run that stores
summaries, and warm 1-, 7- and 30-day runs that parse only day D, plus the summaries' size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from itertools import groupby
from operator import itemgetter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
END = date(2014, 1, 11)
WINDOW, LOOKBACK = 7, 1
ACTIONS = ("login", "logout", "get", "post")


def window_files(log_dir: str) -> list[str]:
    days = [END - timedelta(days=k) for k in range(WINDOW + LOOKBACK - 1, -1, -1)]
    return [os.path.join(log_dir, f"{d.isoformat()}.log") for d in days]


def window_bounds() -> tuple[datetime, datetime]:
    start = END - timedelta(days=WINDOW - 1)
    return datetime(start.year, start.month, start.day), datetime(END.year, END.month, END.day) + timedelta(days=1)


# --- (b) DuckDB -------------------------------------------------------------------------------

def run_duckdb(log_dir: str, out: str) -> None:
    import duckdb

    ws, we = window_bounds()
    con = duckdb.connect()
    query = (HERE / "online_time_duckdb.sql").read_text()
    params = {"files": window_files(log_dir), "win_start": ws, "win_stop": we, "min_gap": 3, "timeout": 600, "mult": 3}
    tbl = con.execute(query, params).to_arrow_table()
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(tbl.cast(pa.schema([(f.name, pa.int64()) for f in tbl.schema])), out)


# --- (p) Polars -------------------------------------------------------------------------------

def run_polars(log_dir: str, out: str) -> None:
    sys.path.insert(0, str(HERE))
    from online_time_polars import query

    ws, we = (int((x - datetime(1970, 1, 1)).total_seconds()) for x in window_bounds())
    query(window_files(log_dir), ws, we).collect().write_parquet(out)


# --- (c) per-user Python loop -----------------------------------------------------------------

def run_loop(log_dir: str, out: str) -> None:
    ws, we = (int((x - datetime(1970, 1, 1)).total_seconds()) for x in window_bounds())
    rows = []
    for fi, path in enumerate(window_files(log_dir)):
        with open(path, encoding="utf-8", errors="replace") as fh:
            for no, line in enumerate(fh, 1):
                if no == 1 and line.startswith("logtime"):
                    continue
                f = line.split()
                if len(f) != 4 or len(f[0]) != 10 or len(f[1]) != 8:
                    continue
                a = f[3].lower()
                if a not in ACTIONS or not (f[2].isdigit() and f[2].isascii() and len(f[2]) <= 18):
                    continue
                try:
                    ts = datetime.strptime(f"{f[0]} {f[1]}", "%Y-%m-%d %H:%M:%S")
                except ValueError:
                    continue
                rows.append((int(f[2]), int((ts - datetime(1970, 1, 1)).total_seconds()), fi, no, a))
    rows.sort()  # the pre-processing step: sort the week by user
    out_rows = []
    for uid, grp in groupby(rows, key=itemgetter(0)):  # one user at a time, as the esProc cursor
        total = sessions = sess = 0
        is_open = marked = present = False
        prev = None
        for _, t, _, _, a in grp:
            inside = ws <= t < we
            present = present or inside
            if a == "login":
                if is_open:
                    total += sess * 3 if marked else sess
                    sessions += sess > 0
                is_open, sess, marked = True, 0, False
            elif is_open:
                gap = t - prev
                if gap > 600:
                    total += sess * 3 if marked else sess
                    sessions += sess > 0
                    is_open = False
                else:
                    if gap >= 3 and inside:
                        sess += gap
                    if a == "post":
                        marked = True
                    elif a == "logout":
                        total += sess * 3 if marked else sess
                        sessions += sess > 0
                        is_open = False
            prev = t
        if is_open:
            total += sess * 3 if marked else sess
            sessions += sess > 0
        if present:
            out_rows.append((uid, total, sessions))
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = list(zip(*out_rows, strict=True)) if out_rows else [(), (), ()]
    pq.write_table(pa.table({"userid": pa.array(cols[0], pa.int64()), "online_seconds": pa.array(cols[1], pa.int64()),
                             "sessions": pa.array(cols[2], pa.int64())}), out)


# --- per-day summaries (issue 25) ------------------------------------------------------------

MONTH_END = date(2014, 2, 11)


def ensure_month(events_per_week: int, label: str) -> str:
    from include.sample_logs import generate_logs

    d = OUT / f"month-{label}"
    marker = d / "generated.json"
    want = {"events": events_per_week * 32 // 8, "users": max(1000, events_per_week // 100), "seed": 7,
            "end": MONTH_END.isoformat(), "days": 32}
    if marker.exists() and json.loads(marker.read_text()).get("params") == want:
        return str(d)
    info = generate_logs(str(d), MONTH_END, days=32, users=want["users"], seed=7, events=want["events"])
    marker.write_text(json.dumps({"params": want, "info": {k: v for k, v in info.items() if k != "files"}}))
    return str(d)


def run_json(cmd: list[str]) -> tuple[float, int, dict]:
    """``measure`` of a CLI run with ``--json``: wall seconds, peak RSS and the printed totals."""
    out = tempfile.NamedTemporaryFile(suffix=".json", delete=False)
    try:
        wall, peak = measure(["sh", "-c", " ".join(cmd) + f" > {out.name}"])
        return wall, peak, json.loads(Path(out.name).read_text())
    finally:
        os.unlink(out.name)


def summaries_bench(label: str, runs: int) -> dict:
    """Each scenario ``runs`` times (median): wall (process, start-up included) and ``seconds`` (the run's own
    time, from ``--json``)."""
    import shutil

    log_dir = ensure_month(parse_size(label), label)
    res = Path(tempfile.mkdtemp(prefix=f"sum-{label}-", dir=OUT))
    cli = [str(ROOT / ".venv/bin/video-analytics"), "online-time", "--log-dir", log_dir, "--json"]
    d, prev = MONTH_END.isoformat(), (MONTH_END - timedelta(days=1)).isoformat()
    warm_root = res / "warm"
    rows: dict = {"size": label, "loadavg": Path("/proc/loadavg").read_text().split()[0]}

    def scenario(name: str, window: int, root: Path | None, before=None) -> None:
        walls, secs, peaks, last = [], [], [], None
        for _ in range(runs):
            if before:
                before()
            cmd = cli + ["--end", d, "--window", str(window), "--out", str(res / f"{name}.parquet")]
            wall, peak, last = run_json(cmd + (["--data-root", str(root)] if root else []))
            walls.append(wall)
            secs.append(last["seconds"])
            peaks.append(peak)
            print(f"{label} {name}: {wall:.2f}s (run {last['seconds']:.2f}s) parsed {len(last['days_parsed'])} "
                  f"reused {len(last['days_reused'])}", file=sys.stderr, flush=True)
        rows[name] = {"wall": statistics.median(walls), "seconds": statistics.median(secs), "rss": max(peaks),
                      "days_parsed": len(last["days_parsed"]), "days_reused": len(last["days_reused"]),
                      "users": last["users"], "online_seconds": last["online_seconds"]}

    def fresh(path: Path):
        return lambda: shutil.rmtree(path, ignore_errors=True)

    def drop_day_d():
        for f in (warm_root / "online_time" / "summaries").glob(f"{d}-*"):
            f.unlink()

    scenario("cold_today_w7", 7, None)
    scenario("cold_summaries_w7", 7, res / "cold", fresh(res / "cold"))
    scenario("cold_today_w30", 30, None)
    subprocess.run(cli + ["--end", prev, "--window", "30", "--out", str(res / "prep.parquet"), "--data-root",
                          str(warm_root)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for w in (1, 7, 30):
        scenario(f"warm_w{w}", w, warm_root, drop_day_d)
    subprocess.run(cli + ["--end", d, "--window", "30", "--out", str(res / "all.parquet"), "--data-root",
                          str(warm_root)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    summaries = sum(f.stat().st_size for f in (warm_root / "online_time" / "summaries").iterdir())
    logs = sum(f.stat().st_size for f in Path(log_dir).glob("*.log"))
    rows["summary_bytes"], rows["log_bytes"] = summaries, logs
    rows["identical"] = {w: same_result(str(res / f"cold_today_w{w}.parquet"), str(res / f"warm_w{w}.parquet"))
                         for w in (7, 30)}
    return rows


def render_summaries(r: dict) -> str:
    lines = [f"load average at start {r['loadavg']}; summaries {r['summary_bytes'] / 2**20:.1f} MiB of "
             f"{r['log_bytes'] / 2**20:.0f} MiB of logs ({r['summary_bytes'] / r['log_bytes']:.1%}); "
             f"warm results identical to cold: {r['identical']}", "",
             "| scenario | days parsed | days reused | wall s | run s | peak RSS |", "|---|---|---|---|---|---|"]
    for k, v in r.items():
        if isinstance(v, dict) and "wall" in v:
            lines.append(f"| {k} | {v['days_parsed']} | {v['days_reused']} | {v['wall']:.2f} | {v['seconds']:.2f} | "
                         f"{v['rss'] / 2**20:.0f} MiB |")
    base, w7, w30 = r["cold_today_w7"], r["warm_w7"], r["warm_w30"]
    lines += ["", f"warm w7 / cold today w7: wall {w7['wall'] / base['wall']:.2f}x, run {w7['seconds'] / base['seconds']:.2f}x; "
              f"warm w30 / warm w7: wall {w30['wall'] / w7['wall']:.2f}x, run {w30['seconds'] / w7['seconds']:.2f}x; "
              f"cold with summaries / cold today: run {r['cold_summaries_w7']['seconds'] / base['seconds']:.2f}x"]
    return "\n".join(lines) + "\n"


# --- harness ----------------------------------------------------------------------------------

def measure(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS bytes (process tree) of a command."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed ({proc.returncode}): {err}")
    return wall, peak


def parse_size(s: str) -> int:
    s = s.strip().upper()
    return int(float(s[:-1]) * 1_000_000) if s.endswith("M") else int(s)


def ensure_logs(events: int, label: str) -> str:
    from include.sample_logs import generate_logs

    d = OUT / f"logs-{label}"
    marker = d / "generated.json"
    want = {"events": events, "users": max(1000, events // 100), "seed": 7, "end": END.isoformat(), "days": 8}
    if marker.exists() and json.loads(marker.read_text()).get("params") == want:
        return str(d)
    info = generate_logs(str(d), END, days=8, users=want["users"], seed=7, events=events)
    marker.write_text(json.dumps({"params": want, "info": {k: v for k, v in info.items() if k != "files"}}))
    return str(d)


def same_result(a: str, b: str) -> bool:
    import pyarrow.parquet as pq

    return pq.read_table(a).equals(pq.read_table(b))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1M,10M,30M")
    ap.add_argument("--runs", type=int, default=3, help="runs per method below 30M events (median reported)")
    ap.add_argument("--runs-large", type=int, default=1, help="runs per method at 30M events and more")
    ap.add_argument("--loop-max", default="10M", help="largest size the Python loop really runs at; "
                    "above it its time is extrapolated linearly from the largest measured size")
    ap.add_argument("--loop-runs", type=int, default=1, help="runs of the Python loop at 10M events and more")
    ap.add_argument("--methods", default="cli,polars,duckdb,loop")
    ap.add_argument("--tag", default="", help="suffix of the result files (e.g. -busy)")
    ap.add_argument("--summaries", action="store_true", help="the per-day summaries' scenarios (issue 25) instead")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    if args.summaries:
        for label in args.sizes.split(","):
            r = summaries_bench(label, args.runs)
            (OUT / f"summaries_{label}{args.tag}.json").write_text(json.dumps(r, indent=2))
            (OUT / f"summaries_{label}{args.tag}.md").write_text(render_summaries(r))
            print(render_summaries(r))
        return 0
    methods = args.methods.split(",")
    loop_max = parse_size(args.loop_max)
    rows, last_loop = [], None
    for label in args.sizes.split(","):
        events = parse_size(label)
        log_dir = ensure_logs(events, label)
        n_lines = json.loads((Path(log_dir) / "generated.json").read_text())["info"]["events"]
        runs = args.runs if events < 30_000_000 else args.runs_large
        res_dir = Path(tempfile.mkdtemp(prefix=f"res-{label}-", dir=OUT))
        row = {"size": label, "loadavg": Path("/proc/loadavg").read_text().split()[0], "events": n_lines, "mb": sum(os.path.getsize(f) for f in window_files(log_dir)) >> 20}
        outs = {}
        for m in methods:
            out = str(res_dir / f"{m}.parquet")
            if m == "cli":
                cmd = [str(ROOT / ".venv/bin/video-analytics"), "online-time", "--log-dir", log_dir, "--end",
                       END.isoformat(), "--out", out]  # no --data-root: every file read, as before summaries
                n = runs
            elif m == "loop" and events > loop_max:
                wall, rss = last_loop
                row[m] = {"wall": wall[0] * n_lines / wall[1], "runs": 0, "rss": None, "extrapolated": True}
                continue
            else:
                cmd = [sys.executable, __file__, f"_{m}", log_dir, out]
                n = args.loop_runs if (m == "loop" and events >= 10_000_000) else runs
            walls, peaks = [], []
            for _ in range(n):
                w, p = measure(cmd)
                walls.append(w)
                peaks.append(p)
                print(f"{label} {m}: {w:.2f}s peak {p / 2**20:.0f} MiB", file=sys.stderr, flush=True)
            row[m] = {"wall": statistics.median(walls), "runs": n, "rss": max(peaks), "all": walls}
            outs[m] = out
            if m == "loop":
                last_loop = ((row[m]["wall"], n_lines), max(peaks))
        row["identical"] = all(same_result(outs["cli"], o) for o in outs.values()) if "cli" in outs else None
        rows.append(row)
        (OUT / f"online_time_results{args.tag}.json").write_text(json.dumps(rows, indent=2))
    print(render(rows, methods))
    (OUT / f"online_time_results{args.tag}.md").write_text(render(rows, methods))
    return 0


def render(rows: list[dict], methods: list[str]) -> str:
    head = "| load avg at start | events | log MB | " + " | ".join(f"{m} s (runs) | {m} peak RSS" for m in methods)
    peers = [m for m in ("polars", "duckdb", "loop") if m in methods]
    head += "".join(f" | {m} / cli" for m in peers) + " | results identical |\n"
    head += "|" + "---|" * (3 + 2 * len(methods) + len(peers) + 1) + "\n"
    lines = []
    for r in rows:
        cells = [r.get("loadavg", "-"), f"{r['events']:,}", str(r["mb"])]
        for m in methods:
            x = r.get(m)
            if not x:
                cells += ["-", "-"]
                continue
            mark = " (extrapolated)" if x.get("extrapolated") else f" ({x['runs']})"
            cells += [f"{x['wall']:.2f}{mark}", "-" if x["rss"] is None else f"{x['rss'] / 2**20:.0f} MiB"]
        cli = r.get("cli", {}).get("wall")
        for m in peers:
            cells.append(f"{r[m]['wall'] / cli:.1f}x" if cli and r.get(m) else "-")
        cells.append({True: "yes", False: "NO", None: "-"}[r["identical"]])
        lines.append("| " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ("_duckdb", "_polars", "_loop"):
        {"_duckdb": run_duckdb, "_polars": run_polars, "_loop": run_loop}[sys.argv[1]](sys.argv[2], sys.argv[3])
        sys.exit(0)
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
