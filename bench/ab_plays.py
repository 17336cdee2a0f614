"""Two versions of ``video-analytics plays`` timed alternately on the same generated day.

This VM's speed moves by up to 25 % from one hour to the next, so a figure only compares with one taken in the
same minutes. Each pair runs both versions back to back (``bench_plays.py --stage cli`` from each version's own
folder, the play-id and category caches reset before each run), the order swapped every pair; the summary gives
each version's runs in order, its medians, and in how many pairs the new one was faster.

    BENCH_REDIS_PORT=6391 .venv/bin/python bench/bench_plays.py --stage gen --n 1000000 --redis-db 8 \\
        --mysql-db test_bench_plays_decoders
    BENCH_REDIS_PORT=6391 .venv/bin/python bench/ab_plays.py --old c4c83cd --pairs 5 --n 1000000 --redis-db 8 \\
        --mysql-db test_bench_plays_decoders

``--old`` / ``--new``: a folder holding the project, or a git revision of this checkout (exported with
``git archive`` to a scratch folder, its C modules built there); ``--new`` defaults to this checkout as it is.
Both run with this virtualenv's packages, and the day must have been generated first (``--stage gen``).
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def _tree(ref: str, out: Path) -> Path:
    """The project folder of ``ref``: a folder as it is, else a git revision exported to ``out`` and built."""
    if Path(ref).is_dir():
        return Path(ref).resolve()
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=False)
    if archive.returncode:
        raise SystemExit(f"ab_plays: {ref} is neither a folder nor a revision of {ROOT}")
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace", "-q"], cwd=out,
                           capture_output=True, text=True, check=False)
    if build.returncode:
        raise SystemExit(f"ab_plays: building the C modules of {ref} failed: {build.stderr[-500:]}")
    return out


def _run(code: Path, a) -> dict:
    """One ``bench_plays.py --stage cli`` of the version in ``code``."""
    import bench_plays

    bench_plays._reset_caches(a.redis_db)  # noqa: SLF001 - the same reset as the bench's own runs
    cmd = [sys.executable, str(code / "bench" / "bench_plays.py"), "--stage", "cli", "--n", str(a.n),
           "--redis-db", str(a.redis_db), "--mysql-db", a.mysql_db, *(["--history"] if a.history else [])]
    env = {**os.environ, "PYTHONPATH": f"{code}{os.pathsep}{code / 'plugins'}"}
    p = subprocess.run(cmd, cwd=code, env=env, capture_output=True, text=True, check=False)
    if p.returncode:
        raise SystemExit(f"ab_plays: {code} failed ({p.returncode}): {p.stderr[-1500:]}")
    lines = p.stdout.strip().splitlines()
    if not lines:
        raise SystemExit(f"ab_plays: {code} printed no result")
    return json.loads(lines[-1])


def _summary(name: str, runs: list[dict]) -> dict:
    wall = [r["wall_s"] for r in runs]
    cpu = [r["cpu_s"]["user"] + r["cpu_s"]["system"] for r in runs]
    return {"code": name, "wall_s": [round(w, 2) for w in wall], "median_wall_s": round(statistics.median(wall), 2),
            "plays_per_s": round(runs[0]["plays"] / statistics.median(wall)),
            "median_cpu_s": round(statistics.median(cpu), 2),
            "largest_mib": [round(min(r["peak_rss_mb_largest_process"] for r in runs)),
                            round(max(r["peak_rss_mb_largest_process"] for r in runs))],
            "tree_mib": [round(min(r["peak_rss_mb_tree"] for r in runs)), round(max(r["peak_rss_mb_tree"] for r in runs))],
            "verify_ok": all(r["verify_ok"] for r in runs)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old", required=True, help="a folder, or a revision of this checkout")
    p.add_argument("--new", default=str(ROOT), help="a folder, or a revision (default: this checkout)")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--redis-db", type=int, default=8)
    p.add_argument("--mysql-db", default="test_bench_plays_decoders")
    p.add_argument("--history", action="store_true", help="each run folds onto a day of history (bench_plays)")
    a = p.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="ab_plays_"))
    try:
        codes = {name: _tree(ref, scratch / name) for name, ref in (("old", a.old), ("new", a.new))}
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        for k in range(a.pairs):
            for name in (("old", "new") if k % 2 == 0 else ("new", "old")):
                res = _run(codes[name], a)
                runs[name].append(res)
                print(json.dumps({"pair": k, "code": name, "wall_s": round(res["wall_s"], 2)}), file=sys.stderr)
        out = {n: _summary(n, r) for n, r in runs.items()}
        out["ratio_old_to_new"] = round(out["old"]["median_wall_s"] / out["new"]["median_wall_s"], 3)
        out["pairs_new_faster"] = sum(n["wall_s"] < o["wall_s"] for o, n in zip(runs["old"], runs["new"], strict=True))
        print(json.dumps(out))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
