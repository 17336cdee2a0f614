"""The data root on an S3-compatible store (a private moto server): direct single-PUT writes, no temporary
objects, even from a killed writer; a dashboard that sees a re-run and a replaced object at once. Bad stores
and garbage objects: test_object_store_errors.py."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from include import dashboard
from include.object_store import StoreError
from include.storage import DataRoot
from tests.conftest import TEST_REDIS_DB
from video_analytics import conventions as conv

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2014, 1, 7)


def test_writes_are_single_puts_with_no_temporary_object(s3, bucket):
    root = DataRoot(f"s3://{bucket}/root")
    mark = s3.mark()
    root.write_json({"a": 1}, "x", "t.json")
    root.write_table(pa.table({"v": [1, 2, 3]}), "x", "t.parquet")
    with root.open_write("x", "b.bin") as fh:
        fh.write(b"z" * 100)
    counts = s3.requests(mark)
    assert counts == {"PUT": 3}, counts  # no temporary PUT, copy or delete; no multipart for small objects
    assert s3.keys(bucket) == ["root/x/b.bin", "root/x/t.json", "root/x/t.parquet"]
    assert root.read_json("x", "t.json") == {"a": 1}
    assert root.read_table("x", "t.parquet").column("v").to_pylist() == [1, 2, 3]
    assert root.glob("x", "*.json") == [f"{bucket}/root/x/t.json"]


def test_streams_and_copies_make_no_temporary_object(s3, bucket):
    """The plays' Parquet streams (a 1M-play snapshot is hundreds of MiB) and the online-time window's
    copies: one PUT each (or one server-side copy), no temporary object, copy and delete."""
    from include.plays.store import ParquetStream

    root = DataRoot(f"s3://{bucket}/root")
    schema = pa.schema([("k", pa.string())])
    mark = s3.mark()
    with ParquetStream(root, "plays/20140107/snapshot/plays_raw.parquet", schema) as stream:
        stream.write(pa.table({"k": ["a", "b"]}, schema=schema))
        stream.write(pa.table({"k": ["c"]}, schema=schema))
    root.copy_file("plays/20140107/snapshot/plays_raw.parquet", "online_time/copy.parquet")
    counts = s3.requests(mark)
    assert counts["PUT"] == 2 and "DELETE" not in counts and "POST" not in counts, counts
    assert s3.keys(bucket) == ["root/online_time/copy.parquet", "root/plays/20140107/snapshot/plays_raw.parquet"]
    assert root.read_table("online_time/copy.parquet").column("k").to_pylist() == ["a", "b", "c"]
    with pytest.raises(RuntimeError):
        with ParquetStream(root, "plays/20140107/half.parquet", schema) as stream:
            stream.write(pa.table({"k": ["a"]}, schema=schema))
            raise RuntimeError("writer failed")
    assert not root.exists("plays/20140107/half.parquet")


def test_a_failed_write_leaves_nothing(s3, bucket):
    root = DataRoot(f"s3://{bucket}/root")
    with pytest.raises(RuntimeError):
        with root.open_write("x", "half.bin") as fh:
            fh.write(b"half")
            raise RuntimeError("writer failed")
    assert s3.keys(bucket) == []


_KILLED_WRITER = """
import os, sys
from include.storage import DataRoot
root = DataRoot(sys.argv[1])
st = root.stage("online_time", "shard.arrow")
with root.open_write("x", "big.bin") as fh:
    for _ in range(40):
        fh.write(os.urandom(1 << 20))
        st.fh.write(os.urandom(1 << 20))
    print("written", flush=True)
    sys.stdin.readline()
"""


def test_a_killed_writer_leaves_no_temporary_object(s3, bucket):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}"}
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, f"s3://{bucket}/root"], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "written"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert s3.keys(bucket) == []


def test_dashboard_sees_a_rerun_and_a_replaced_object_at_once(s3, bucket):
    root = DataRoot(f"s3://{bucket}/root")
    totals = conv.online_time_path(DAY, "totals.json")
    seconds = conv.online_time_path(DAY, "online_time.parquet")
    root.write_json({"users": 3, "online_seconds": 6660, "rows_in": 10, "rejects": 0}, totals)
    root.write_table(pa.table({"online_seconds": [60, 600, 6000]}), seconds)
    assert dashboard.day_summary(root, DAY.isoformat())["users"] == 3
    assert dashboard.online_seconds(root, DAY.isoformat()).tolist() == [60, 600, 6000]
    assert dashboard.days(root) == [DAY.isoformat()]
    # a re-run within the same second, same sizes: the ETag tells it apart
    root.write_json({"users": 4, "online_seconds": 6660, "rows_in": 10, "rejects": 0}, totals)
    root.write_table(pa.table({"online_seconds": [60, 600, 6001]}), seconds)
    assert dashboard.day_summary(root, DAY.isoformat())["users"] == 4
    assert dashboard.online_seconds(root, DAY.isoformat()).tolist() == [60, 600, 6001]
    # replaced by another writer, then by garbage: one line naming the object and the connection
    s3.put(bucket, f"root/{seconds}", b"not parquet at all")
    with pytest.raises(StoreError) as err:
        dashboard.online_seconds(root, DAY.isoformat())
    msg = str(err.value)
    assert f"s3://{bucket}/root/{seconds}" in msg and "video_storage" in msg and "Parquet" in msg
    assert "\n" not in msg and s3.secret not in msg


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "include.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_cli_online_time_on_object_storage_equals_local(s3, bucket, tmp_path):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}"}
    logs = tmp_path / "logs"
    env["AIRFLOW_CONN_VIDEO_REDIS"] = f"redis://127.0.0.1:{os.environ.get('VIDEO_REDIS_PORT', '6379')}/{TEST_REDIS_DB}"
    res = _cli("sample-data", "--date", DAY.isoformat(), "--log-dir", str(logs), "--users", "80", "--plays", "5",
               env=env)
    assert res.returncode == 0, res.stderr
    remote_logs = DataRoot(f"s3://{bucket}/logs")
    for f in sorted(logs.iterdir()):
        remote_logs.write_bytes(f.read_bytes(), f.name)
    args = ["online-time", "--date", DAY.isoformat()]
    local = _cli(*args, "--log-dir", str(logs), "--data-root", str(tmp_path / "root"),
                 "--out", str(tmp_path / "local.csv"), env=env)
    assert local.returncode == 0, local.stderr
    remote = _cli(*args, "--log-dir", remote_logs.url, "--data-root", f"s3://{bucket}/root",
                  "--out", str(tmp_path / "remote.csv"), env=env)
    assert remote.returncode == 0, remote.stderr
    assert (tmp_path / "remote.csv").read_bytes() == (tmp_path / "local.csv").read_bytes()
    assert DataRoot(f"s3://{bucket}/root").read_json("online_time", DAY.isoformat(), "totals.json")["users"] > 0
    assert not [k for k in s3.keys(bucket) if k.endswith(".tmp")]


_TASK_LOG = """
import sys
from pathlib import Path
from airflow.sdk.log import load_remote_conn_id, load_remote_log_handler
from airflow.logging_config import configure_logging, get_remote_task_log
configure_logging()
writer, reader = load_remote_log_handler(), get_remote_task_log()
rel = "dag_id=d/run_id=r/task_id=t/attempt=1.log"
local = Path(sys.argv[1]) / rel
local.parent.mkdir(parents=True)
local.write_text('{"event": "hello from the worker"}\\n')
writer.upload(rel)
print("OUT", type(writer).__name__, type(reader).__name__, load_remote_conn_id())
print("OUT", reader.read(rel, None))
print("OUT", reader.read("dag_id=d/none.log", None))
"""


def test_task_logs_go_to_the_object_store_and_back(s3, bucket, tmp_path):
    """Airflow's remote logging, as docs/SCALING.md sets it: the amazon provider's S3 task handler on the
    ``video_storage`` connection (its ``endpoint_url``), the store the data root is on."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}",
           "AIRFLOW__LOGGING__REMOTE_LOGGING": "True",
           "AIRFLOW__LOGGING__REMOTE_BASE_LOG_FOLDER": f"s3://{bucket}/task-logs",
           "AIRFLOW__LOGGING__REMOTE_LOG_CONN_ID": "video_storage",
           "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(tmp_path / "logs")}
    res = subprocess.run([sys.executable, "-c", _TASK_LOG, str(tmp_path / "logs")], env=env, capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    kinds, found, missing = [ln[4:] for ln in res.stdout.splitlines() if ln.startswith("OUT ")]
    assert kinds == "S3RemoteLogIO S3RemoteLogIO video_storage"
    assert "hello from the worker" in found and f"s3://{bucket}/task-logs/dag_id=d/run_id=r" in found
    assert missing == "([], None)"  # no such log (yet): the UI then says so
    assert s3.keys(bucket) == ["task-logs/dag_id=d/run_id=r/task_id=t/attempt=1.log"]
