"""Shared test setup: the project's env (scripts/env.sh) and real Redis / MariaDB fixtures.

The services themselves are started by ``make test`` (scripts/services.sh); a test that
finds them down fails with a message saying so, never falls back to a mock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _load_project_env() -> None:
    if os.environ.get("VIDEO_ROOT"):
        return
    out = subprocess.run(
        ["bash", "-c", f". {ROOT}/scripts/env.sh && env -0"], check=True, capture_output=True
    ).stdout
    for item in out.split(b"\0"):
        if b"=" in item:
            k, v = item.decode().split("=", 1)
            os.environ.setdefault(k, v)


_load_project_env()


@pytest.fixture
def redis_db():
    """A real Redis client on a scratch database (flushed before and after)."""
    import redis

    db = int(os.environ.get("VIDEO_TEST_REDIS_DB", "9"))
    client = redis.Redis(host="127.0.0.1", port=int(os.environ.get("VIDEO_REDIS_PORT", "6379")), db=db,
                         decode_responses=True)
    try:
        client.ping()
    except Exception as exc:  # pragma: no cover - environment problem
        pytest.fail(f"Redis is not answering on 127.0.0.1 ({exc}); run `scripts/services.sh start`")
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def mysql_db():
    """A fresh scratch MariaDB database ``test_<random>``; yields its name (dropped after)."""
    import MySQLdb

    name = f"test_{uuid.uuid4().hex[:10]}"
    kw = dict(host="127.0.0.1", port=int(os.environ.get("VIDEO_MYSQL_PORT", "3306")), user="video", passwd="video")
    try:
        conn = MySQLdb.connect(**kw)
    except Exception as exc:  # pragma: no cover - environment problem
        pytest.fail(f"MariaDB is not answering on 127.0.0.1 ({exc}); run `scripts/services.sh start`")
    conn.cursor().execute(f"CREATE DATABASE `{name}`")
    conn.commit()
    yield name
    conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()
