"""Benchmark of the dashboard's page loads (plugins/video_dashboard_plugin.py) on a large data root.

Builds (once, cached in ``bench/out/dashboard-root``) a data root with ``--days`` days of history,
each day as large as a day with ``--plays`` plays: ``online_time/D/online_time.parquet`` (``--users``
users), ``plays/D/contrib/vid.parquet`` (``--vids`` videos), ``plays/D/segments.parquet`` (every video
with ``--segments`` 2-second segments, sorted by vid as ``rollup_videos`` writes it), ``totals.json``,
``ingest.json`` and ``reports/D.json``. One day's Parquet files are generated and hard-linked into the
other days (a page reads one day's files only, so the history's size is what matters, not its variety).

Then it times each page through the plugin's real FastAPI app (``TestClient``; Airflow's auth
dependency is overridden, as the auth check is Airflow's and not part of the page), twice per page:
**cold** (the process cache empty: every file read from disk) and **warm** (cache hit by mtime). The
figure is the median of ``--runs`` runs.

    .venv/bin/python bench/bench_dashboard.py --days 60 --plays 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "dashboard-root"


def build(root_dir: Path, days: int, plays: int, users: int, vids: int, segments: int, end: dt.date) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from include.verify import build_report

    marker = root_dir / "params.json"
    params = {"days": days, "plays": plays, "users": users, "vids": vids, "segments": segments, "end": end.isoformat()}
    if marker.exists() and json.loads(marker.read_text()) == params:
        return
    shutil.rmtree(root_dir, ignore_errors=True)
    rng = np.random.default_rng(7)
    proto = root_dir / "proto"
    proto.mkdir(parents=True)
    secs = rng.gamma(0.6, 4000, users).astype("int64")
    pq.write_table(pa.table({"userid": np.arange(users, dtype="int64"), "online_seconds": secs,
                             "sessions": rng.integers(1, 20, users)}), proto / "online_time.parquet")
    weights = rng.zipf(1.6, vids).astype("float64")
    clicks = np.maximum(1, (weights / weights.sum() * plays).astype("int64"))
    vid = np.array([f"{1000000 + i:07d}" for i in range(vids)])
    kid = rng.choice(np.array(["music", "news", "sport", "film", "nokid"]), vids)
    pq.write_table(pa.table({"vid": vid, "uid": [v[:4] for v in vid], "kid": kid, "ClickNum": clicks,
                             "Traffic": clicks * rng.uniform(1e3, 5e3, vids), "EngageSum": clicks * 0.5,
                             "IP": clicks, "PlayID": clicks, "Load": clicks, "Play": clicks}),
                   proto / "vid.parquet")
    seg = np.tile(np.arange(1, segments + 1, dtype="int64"), vids)
    heat = (np.repeat(clicks, segments) * np.exp(-seg / (segments / 3))).astype("int64")
    pq.write_table(pa.table({"vid": np.repeat(vid, segments), "seg": seg, "heat": heat, "plays": heat}),
                   proto / "segments.parquet")
    for i in range(days):
        d = end - dt.timedelta(days=days - 1 - i)
        ot = root_dir / "online_time" / d.isoformat()
        pd_ = root_dir / "plays" / d.strftime("%Y%m%d")
        (pd_ / "contrib").mkdir(parents=True)
        ot.mkdir(parents=True)
        os.link(proto / "online_time.parquet", ot / "online_time.parquet")
        os.link(proto / "vid.parquet", pd_ / "contrib" / "vid.parquet")
        os.link(proto / "segments.parquet", pd_ / "segments.parquet")
        rows_in = users * 100
        (ot / "totals.json").write_text(json.dumps({"users": users, "online_seconds": int(secs.sum()),
                                                    "sessions": users * 3, "rows_in": rows_in,
                                                    "rejects": int(rows_in * 0.002 * (1 + i % 5))}))
        (pd_ / "ingest.json").write_text(json.dumps({"ingested": plays - 300, "unique": plays,
                                                     "quarantined": 300 + 100 * (i % 3)}))
        rep = build_report(d, {"online_time": [{"name": "reject rate under threshold", "ok": True,
                                                "detail": "x rejects of y rows = 0.2% (threshold 1.0000%)"}],
                               "plays": [{"name": "quarantine_rate", "ok": True, "detail": {"threshold": 0.01}}]})
        (root_dir / "reports").mkdir(exist_ok=True)
        (root_dir / "reports" / f"{d.isoformat()}.json").write_text(json.dumps(rep))
    marker.write_text(json.dumps(params))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--plays", type=int, default=1_000_000)
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--vids", type=int, default=20_000)
    ap.add_argument("--segments", type=int, default=300, help="2-second segments per video (300 = 10 min)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--root", type=Path, default=OUT)
    args = ap.parse_args(argv)
    end = dt.date(2014, 3, 1)
    t0 = time.perf_counter()
    build(args.root, args.days, args.plays, args.users, args.vids, args.segments, end)
    print(f"data root {args.root} ready in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

    os.environ["AIRFLOW_VAR_DATA_ROOT"] = str(args.root)
    from fastapi.testclient import TestClient

    from include import dashboard

    sys.path.insert(0, str(ROOT / "plugins"))  # as Airflow does: the plugin imports video_ui from there
    spec = importlib.util.spec_from_file_location("video_dashboard_plugin", ROOT / "plugins" / "video_dashboard_plugin.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    app = mod.VideoDashboardPlugin.fastapi_apps[0]["app"]
    for dep in app.router.dependencies:  # Airflow's auth check: not part of the page's cost
        app.dependency_overrides[dep.dependency] = lambda: None
    http = TestClient(app)
    day = end.isoformat()
    top_vid = dashboard.top_videos(dashboard.DataRoot(str(args.root)), day, 1)["by_plays"][0]["vid"]
    pages = {"overview (30 days)": "/", "overview (60 days)": "/?days=60", "day": f"/day/{day}",
             "day, another video's heat map": f"/day/{day}?vid=1000123"}
    # (the run tab is the day page plus one metadata-DB lookup of the run's logical date)
    rows = []
    for name, path in pages.items():
        cold, warm = [], []
        for _ in range(args.runs):
            dashboard._CACHE.clear()
            t = time.perf_counter()
            r = http.get(path)
            cold.append(time.perf_counter() - t)
            assert r.status_code == 200, (path, r.status_code, r.text[:500])
            t = time.perf_counter()
            http.get(path)
            warm.append(time.perf_counter() - t)
        rows.append({"page": name, "path": path, "cold_s": round(statistics.median(cold), 3),
                     "warm_s": round(statistics.median(warm), 3), "bytes": len(r.content)})
    sizes = {p.name: p.stat().st_size for p in (args.root / "proto").iterdir()}
    print(json.dumps({"params": vars(args) | {"root": str(args.root)}, "top_vid": top_vid, "file_bytes": sizes,
                      "pages": rows}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
