"""``video-analytics plays`` / ``export-docs`` through the installed entry point, connections from env."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from include.sample_plays import generate_plays
from tests.support.plays import categories, put_play

BIN = Path(sys.prefix) / "bin" / "video-analytics"
DAY = "20140107"


def _env(redis_db, mysql_db, form: str) -> dict:
    db = redis_db.connection_pool.connection_kwargs["db"]
    env = dict(os.environ)
    env.pop("AIRFLOW_CONN_VIDEO_MONGO", None)
    if form == "uri":
        env["AIRFLOW_CONN_VIDEO_REDIS"] = f"redis://127.0.0.1:6379/{db}"
        env["AIRFLOW_CONN_VIDEO_MYSQL"] = f"mysql://video:video@127.0.0.1:3306/{mysql_db}"
    else:
        env["AIRFLOW_CONN_VIDEO_REDIS"] = json.dumps({"conn_type": "redis", "host": "127.0.0.1", "port": 6379,
                                                      "schema": str(db)})
        env["AIRFLOW_CONN_VIDEO_MYSQL"] = json.dumps({"conn_type": "mysql", "host": "127.0.0.1", "port": 3306,
                                                      "login": "video", "password": "video",
                                                      "schema": mysql_db})
    return env


@pytest.mark.parametrize("form", ["uri", "json"])
def test_plays_then_export_docs_cli(redis_db, mysql_db, tmp_path, form):
    generate_plays(redis_db, None, DAY, plays=300, seed=5)
    categories(mysql_db, [("1000001", 1)], [(1, "music")])
    put_play(redis_db, DAY, "1000001_cli")
    env = _env(redis_db, mysql_db, form)
    root, out = tmp_path / "root", tmp_path / "out"
    run = subprocess.run([str(BIN), "plays", "--date", DAY, "--data-root", str(root)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout)  # standard output is the JSON result alone (log lines go to stderr)
    assert report["ingest"]["day"] == DAY and all(c["ok"] for c in report["verify"])
    assert redis_db.hget("T_video_kid_info", "1000001") == "music"  # MySQL reached through the connection
    run = subprocess.run([str(BIN), "export-docs", "--data-root", str(root), "--out", str(out)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    files = {p.name for p in out.glob("*.jsonl")}
    assert {"1000_stat.jsonl", "1000_vdaily.jsonl", "1000_daily.jsonl", "1000001_play.jsonl"} <= files
    stat = [json.loads(line) for line in (out / "1000_stat.jsonl").read_text().splitlines()]
    uid_doc = next(d for d in stat if d["_id"] == "1000")
    assert isinstance(uid_doc["Play"], int) and isinstance(uid_doc["Traffic"], float)
    assert isinstance(uid_doc["Geo"], dict) and uid_doc["Mtraffic"] == uid_doc["Traffic"]
    plays = [json.loads(line) for line in (out / "1000001_play.jsonl").read_text().splitlines()]
    assert all(isinstance(p["_id"], int) and p["Date"] == DAY for p in plays)
    types = [json.loads(line) for line in (out / "1000_type.jsonl").read_text().splitlines()]
    assert types[0]["_id"] == DAY and "music" in types[0]


def test_verify_all_cli(redis_db, mysql_db, tmp_path):
    import pyarrow as pa

    from include.storage import DataRoot

    env = _env(redis_db, mysql_db, "uri")
    categories(mysql_db, [], [])
    root = tmp_path / "root"
    for day in ("20140106", DAY):
        generate_plays(redis_db, None, day, plays=200, seed=int(day[-1]))
        run = subprocess.run([str(BIN), "plays", "--date", day, "--data-root", str(root)], env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
    run = subprocess.run([str(BIN), "verify", "--all", "--data-root", str(root)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert {c["name"] for c in json.loads(run.stdout)} >= {"every_done_day_folded", "contributions_match_plays",
                                                           "totals_refold_from_first_day"}
    dr = DataRoot(str(root))
    t = dr.read_table("plays", "20140106", "plays.parquet")
    flow = t.column("flow").to_pylist()
    flow[0] += 5.0
    dr.write_table(t.set_column(t.schema.get_field_index("flow"), "flow", pa.array(flow)),
                   "plays", "20140106", "plays.parquet")
    run = subprocess.run([str(BIN), "verify", "--all", "--data-root", str(root)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1
    failed = {c["name"] for c in json.loads(run.stdout) if not c["ok"]}
    assert failed == {"contributions_match_plays"}
    assert json.loads((root / "totals" / "verify-all.json").read_text())["ok"] is False
    run = subprocess.run([str(BIN), "verify", "--data-root", str(root)], env=env, capture_output=True, text=True)
    assert run.returncode == 2 and "--all" in run.stderr  # the full check is never implied
