"""Benchmark of ``legacy-import`` (CONTRACT §7) on a generated ``mongoexport`` dump: wall time and peak
memory of the import, run in its own child process.

The dump (``tests.support.mongoexport.synthetic_dump``: ``--vids-per-uid`` vids per uid (1,000) in random order, up to
``--segments`` segments and 4 regions per vid) is cached in ``bench/out/legacy-dump-<vids>-<segments>/``.
Peak memory is the child's peak RSS (``ru_maxrss``); CPU time is the child's user + system time (the
machine may be busy: wall time then says little). Results go to standard output as JSON.

    python bench/bench_legacy_import.py --vids 1000000
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
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHILD = """
import json, sys
from include.plays.legacy_import import import_dump
from include.storage import DataRoot
out = import_dump(DataRoot(sys.argv[1]), sys.argv[2], tmp=sys.argv[3])
print(json.dumps({k: out[k] for k in ("status", "last_day", "rows", "seconds")}))
"""


def _dump(vids: int, segments: int, per_uid: int) -> tuple[Path, dict]:
    from tests.support.mongoexport import synthetic_dump

    path = ROOT / "bench" / "out" / (f"legacy-dump-{vids}-{segments}" + ("" if per_uid == 1000 else f"-{per_uid}"))
    meta = path / "meta.json"
    if not meta.exists():
        shutil.rmtree(path, ignore_errors=True)
        t0 = time.perf_counter()
        made = synthetic_dump(path / "dump", vids, segments=segments, vids_per_uid=per_uid)
        made["generate_seconds"] = round(time.perf_counter() - t0, 1)
        made["bytes"] = sum(p.stat().st_size for p in (path / "dump").iterdir())
        meta.write_text(json.dumps(made))
    return path / "dump", json.loads(meta.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vids", type=int, default=1_000_000, help="vid stat documents in the dump")
    ap.add_argument("--segments", type=int, default=60, help="at most this many segments per vid")
    ap.add_argument("--vids-per-uid", type=int, default=1000,
                    help="vids per <uid>_stat collection (a vid is its uid and 3 characters: at most 238,328)")
    args = ap.parse_args()
    dump, made = _dump(args.vids, args.segments, args.vids_per_uid)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}", "ARROW_DEFAULT_MEMORY_POOL": "system"}
    with tempfile.TemporaryDirectory(prefix="bench-legacy-import-") as tmp:
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-c", CHILD, f"{tmp}/root", str(dump), tmp], env=env,
                             capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if run.returncode:
            print(run.stderr[-3000:], file=sys.stderr)
            return 1
        baseline = sum(p.stat().st_size for p in Path(tmp, "root").rglob("*.parquet"))
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = use.ru_maxrss * 1024
    print(json.dumps({"vids": args.vids, "segments_max": args.segments, "vids_per_uid": args.vids_per_uid, "dump": made, "wall_seconds": round(wall, 1),
                      "cpu_seconds": round(use.ru_utime + use.ru_stime, 1),
                      "peak_rss_mib": round(peak / 2**20, 1), "baseline_bytes": baseline,
                      "load_avg_at_end": os.getloadavg()[0], "import": json.loads(run.stdout)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
