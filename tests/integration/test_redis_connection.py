"""Redis through the provider's RedisHook: an ACL user, a password and the ``db`` extra are honoured.

Starts its own password-protected redis-server on a free port (stopped by pid)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from include import settings
from tests.support.servers import redis_server

BIN = Path(sys.prefix) / "bin" / "video-analytics"


@pytest.fixture(scope="module")
def secured_redis(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis-auth"), "--requirepass", "admin-pw",
                      "--user", "video", "on", ">video-pw", "~*", "+@all", password="admin-pw") as (port, _):
        yield port, redis.Redis(host="127.0.0.1", port=port, password="admin-pw", decode_responses=True)


def _conn(monkeypatch, **fields):
    monkeypatch.setenv("AIRFLOW_CONN_VIDEO_REDIS", json.dumps({"conn_type": "redis", "host": "127.0.0.1", **fields}))


def test_acl_user_password_and_db_extra(secured_redis, monkeypatch):
    port, admin = secured_redis
    _conn(monkeypatch, port=port, login="video", password="video-pw", extra={"db": 3})
    client = settings.redis_client()
    client.set("probe", "é")
    assert client.get("probe") == "é"  # decoded
    assert admin.execute_command("SELECT", 3) and admin.get("probe") == "é"
    assert redis.Redis(host="127.0.0.1", port=port, password="admin-pw", db=0).get("probe") is None
    assert client.acl_whoami() == "video"


def test_uri_path_is_the_db_when_the_extra_has_none(secured_redis, monkeypatch):
    port, _ = secured_redis
    monkeypatch.setenv("AIRFLOW_CONN_VIDEO_REDIS", f"redis://:admin-pw@127.0.0.1:{port}/5")
    client = settings.redis_client()
    client.set("probe5", "x")
    assert redis.Redis(host="127.0.0.1", port=port, password="admin-pw", db=5).get("probe5") == b"x"


def test_wrong_password_fails_and_the_cli_names_the_connection(secured_redis, monkeypatch, tmp_path):
    port, _ = secured_redis
    _conn(monkeypatch, port=port, login="video", password="wrong")
    with pytest.raises(redis.exceptions.AuthenticationError):
        settings.redis_client().ping()
    run = subprocess.run([str(BIN), "plays", "--date", "20140107", "--data-root", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert run.returncode == 1 and f"video_redis (127.0.0.1:{port})" in run.stderr
    assert "Traceback" not in run.stderr and "wrong" not in run.stderr
