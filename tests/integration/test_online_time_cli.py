"""The installed ``video-analytics online-time`` CLI on generated logs, against the oracle."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from include.online_time.logs import write_done_markers
from include.sample_logs import generate_logs
from tests.support.online_oracle import oracle_for_dir

CLI = str(Path(sys.executable).parent / "video-analytics")
END = date(2014, 1, 11)


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("logs")
    write_done_markers(generate_logs(str(d), END, days=8, users=500, seed=5)["files"])
    return d


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "online-time", *args], capture_output=True, text=True, timeout=300)


def as_dict(table) -> dict[int, tuple[int, int]]:
    return {r["userid"]: (r["online_seconds"], r["sessions"]) for r in table.to_pylist()}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_cli_output_matches_the_oracle(logs, tmp_path, fmt):
    out = tmp_path / f"online.{fmt}"
    p = cli("--log-dir", str(logs), "--end", END.isoformat(), "--out", str(out), "--shards", "3")
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("\n") == 1 and "users" in p.stderr and str(out) in p.stderr
    table = pacsv.read_csv(out) if fmt == "csv" else pq.read_table(out)
    assert table.column_names == ["userid", "online_seconds", "sessions"]
    ids = table.column("userid").to_pylist()
    assert ids == sorted(ids)
    want, rows_in, rejects = oracle_for_dir(logs, END)
    assert as_dict(table) == want
    assert f"{rows_in} rows, {rejects} rejected" in p.stderr
    if fmt == "csv":
        assert out.read_text().splitlines()[0] == "userid,online_seconds,sessions"


def test_cli_keeps_its_work_dir_when_asked(logs, tmp_path):
    work = tmp_path / "work"
    p = cli("--log-dir", str(logs), "--end", END.isoformat(), "--out", str(tmp_path / "o.csv"), "--work-dir", str(work))
    assert p.returncode == 0, p.stderr
    run = work / "online_time" / "2014-01-11" / "w7"  # each window in its own folder, beside the day summaries
    assert (run / "rejects.parquet").exists() and (run / "online_time.parquet").exists()
    assert (run.parent / "totals.json").exists()  # the 7-day window is also the day's report
    assert len(list((work / "online_time" / "summaries").glob("*.arrow"))) == 8
    assert json.loads((run / "totals.json").read_text())["users"] > 0
    # made from the day summaries: no shards (the full computation: tests/unit/test_online_time_windows.py)
    assert json.loads((run.parent / "partition.json").read_text())["mode"] == "summaries"
    assert not (run.parent / "shards").exists()


def test_cli_missing_files_give_a_clear_error(logs, tmp_path):
    p = cli("--log-dir", str(logs), "--end", "2014-01-13", "--out", str(tmp_path / "o.csv"))
    assert p.returncode != 0
    assert "2014-01-12.log" in p.stderr and "2014-01-13.log" in p.stderr and "missing" in p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--end", "2014-13-01"], "must be a date YYYY-MM-DD or YYYYMMDD"),
        (["--end", "2014-01-11", "--window", "0"], "--window"),
        (["--end", "2014-01-11", "--max-reject-rate", "0"], "exceed the threshold"),
    ],
)
def test_cli_bad_arguments(logs, tmp_path, args, needle):
    p = cli("--log-dir", str(logs), "--out", str(tmp_path / "o.csv"), *args)
    assert p.returncode != 0 and needle in p.stderr and "Traceback" not in p.stderr


def test_cli_bad_out_and_log_dir(tmp_path, logs):
    p = cli("--log-dir", str(logs), "--end", "2014-01-11", "--out", str(tmp_path / "o.json"))
    assert p.returncode == 2 and ".csv or .parquet" in p.stderr
    p = cli("--log-dir", str(tmp_path / "nope"), "--end", "2014-01-11", "--out", str(tmp_path / "o.csv"))
    assert p.returncode == 2 and "not a directory" in p.stderr
