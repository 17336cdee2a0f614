"""Frozen servers and malformed connections (issue 21, items 4 and 8).

A frozen server accepts connections (the kernel completes them) and never answers: a SIGSTOPped
redis-server of this module's own, and, for MySQL and MongoDB, a listening socket that never accepts
(what a SIGSTOPped mysqld or mongod is to a client). Every wait is bounded by the connections'
timeouts (``VIDEO_CONNECT_TIMEOUT_SECONDS``/``VIDEO_READ_TIMEOUT_SECONDS``, 1 s here); without them
these runs hang until the subprocess timeout fails the test."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from include import settings, tasks
from include.cli import EXIT_TRANSIENT
from tests.support.plays import put_play
from tests.support.servers import redis_server
from video_analytics.conventions import lease_key

BIN = Path(sys.prefix) / "bin" / "video-analytics"
DAY = "20140107"
TIMEOUTS = {"VIDEO_CONNECT_TIMEOUT_SECONDS": "1", "VIDEO_READ_TIMEOUT_SECONDS": "1"}
SECRET = "s3cretpw"


@pytest.fixture
def frozen_redis(tmp_path):
    """A redis-server of this test's own, SIGSTOPped once it answers; its port."""
    with redis_server(tmp_path) as (port, proc):
        os.kill(proc.pid, signal.SIGSTOP)
        yield port


@pytest.fixture
def silent_server():
    """A port whose connections the kernel completes and nobody ever answers: a frozen server."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock.getsockname()[1]
    sock.close()


def _plays_cli(tmp_path, env: dict) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "AIRFLOW_CONN_VIDEO_MONGO"}
    full.update({**TIMEOUTS, **env})
    return subprocess.run([str(BIN), "plays", "--date", DAY, "--data-root", str(tmp_path / "root")],
                          capture_output=True, text=True, timeout=120, env=full)


def _one_error_line(run: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in run.stderr.splitlines() if "error:" in ln]
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr[-3000:]
    return lines[0]


def test_a_frozen_redis_fails_the_cli_as_transient_naming_video_redis(frozen_redis, tmp_path):
    run = _plays_cli(tmp_path, {"AIRFLOW_CONN_VIDEO_REDIS": f"redis://127.0.0.1:{frozen_redis}/0"})
    line = _one_error_line(run)
    assert run.returncode == EXIT_TRANSIENT and f"video_redis (127.0.0.1:{frozen_redis})" in line, run.stderr
    assert "Timeout" in line


def test_a_frozen_mysql_fails_ingest_as_transient_and_releases_the_lease(silent_server, redis_db, tmp_path):
    for i in range(5):
        put_play(redis_db, DAY, f"1000001_{DAY}{i:04d}")
    redis_url = f"redis://127.0.0.1:{redis_db.connection_pool.connection_kwargs['port']}/" \
                f"{redis_db.connection_pool.connection_kwargs['db']}"
    run = _plays_cli(tmp_path, {"AIRFLOW_CONN_VIDEO_REDIS": redis_url,
                                "AIRFLOW_CONN_VIDEO_MYSQL": f"mysql://video:video@127.0.0.1:{silent_server}/video"})
    line = _one_error_line(run)
    assert run.returncode == EXIT_TRANSIENT and f"video_mysql (127.0.0.1:{silent_server})" in line, run.stderr
    # the category lookup runs inside the day's lease: the timeout left through it and released it
    assert redis_db.get(lease_key(DAY)) is None


def test_a_frozen_redis_fails_a_task_with_one_retryable_line(frozen_redis, monkeypatch):
    for k, v in TIMEOUTS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AIRFLOW_CONN_VIDEO_REDIS", f"redis://127.0.0.1:{frozen_redis}/0")
    ctx = {"logical_date": dt.datetime(2014, 1, 7, tzinfo=dt.UTC), "params": {}}
    with pytest.raises(settings.ConnectionFailed) as err:
        with tasks._fail_fast():  # not a deterministic failure: Airflow retries it
            tasks.wait_for_plays(ctx)
    assert isinstance(err.value, ConnectionError) and err.value.transient
    assert str(err.value).startswith(f"connection video_redis (127.0.0.1:{frozen_redis}) failed: TimeoutError")
    assert "\n" not in str(err.value)


def test_a_frozen_mongodb_fails_within_the_timeouts_naming_video_mongo(silent_server, monkeypatch):
    for k, v in TIMEOUTS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AIRFLOW_CONN_VIDEO_MONGO", f"mongo://u:{SECRET}@127.0.0.1:{silent_server}/video")
    db = settings.mongo_db()
    opts = db.client.options
    assert (opts.server_selection_timeout, opts.pool_options.connect_timeout, opts.pool_options.socket_timeout) == (
        1, 1, 1)
    with pytest.raises(Exception) as err:
        db.command("ping")
    named = settings.connection_failure(err.value)
    assert named is not None and named.transient
    assert str(named).startswith(f"connection video_mongo (127.0.0.1:{silent_server}) failed: ServerSelectionTimeout")
    assert SECRET not in str(named)
    db.client.close()


def test_the_connections_extra_overrides_the_timeouts(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_VIDEO_MONGO", json.dumps({
        "conn_type": "mongo", "host": "127.0.0.1", "port": 1, "extra": {"socketTimeoutMS": 5000}}))
    db = settings.mongo_db()
    assert db.client.options.pool_options.socket_timeout == 5 and db.client.options.server_selection_timeout == 10
    db.client.close()


MALFORMED = {
    "video_redis": [
        f"redis://u:{SECRET}@127.0.0.1:abc/0",
        '{"conn_type": "redis", "password": "' + SECRET + '", "port": ',
        json.dumps({"conn_type": "redis", "host": "127.0.0.1", "password": SECRET, "extra": {"db": [1]}}),
        json.dumps({"conn_type": "redis", "host": "127.0.0.1", "password": SECRET, "port": "x"}),
    ],
    "video_mysql": [
        f"mysql://video:{SECRET}@127.0.0.1:99999/video",
        json.dumps({"conn_type": "mysql", "host": "127.0.0.1", "password": SECRET, "port": -3}),
    ],
    "video_mongo": [
        f"mongodb://u:{SECRET}@127.0.0.1:27017:1/video",
        json.dumps({"conn_type": "mongo", "host": "127.0.0.1", "login": "u", "password": SECRET,
                    "extra": {"serverSelectionTimeoutMS": "soon"}}),
        json.dumps({"conn_type": "http", "host": "127.0.0.1", "login": "u", "password": SECRET}),
    ],
}
FACTORIES = {"video_redis": settings.redis_client, "video_mysql": settings.mysql_hook,
             "video_mongo": settings.mongo_db}


@pytest.mark.parametrize("conn_id,value", [(c, v) for c, vs in MALFORMED.items() for v in vs])
def test_a_malformed_connection_is_one_line_naming_it_without_its_password(conn_id, value, monkeypatch):
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)
    with pytest.raises(settings.ConnectionSettingError) as err:
        FACTORIES[conn_id]()
    msg = str(err.value)
    assert msg.startswith(f"connection {conn_id}") and "\n" not in msg and SECRET not in msg, msg


@pytest.mark.parametrize("conn_id", ["video_redis", "video_mongo"])
def test_the_cli_says_which_connection_is_malformed(conn_id, tmp_path):
    """A malformed video_mongo used to pass for "not defined": publish was skipped without a word."""
    run = _plays_cli(tmp_path, {f"AIRFLOW_CONN_{conn_id.upper()}": MALFORMED[conn_id][0]})
    line = _one_error_line(run)
    assert run.returncode == 1 and f"connection {conn_id}" in line and SECRET not in run.stderr, run.stderr
