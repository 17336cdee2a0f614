"""Shared test setup: the project's env (scripts/env.sh) and fixtures for real Redis / MariaDB
and for mongomock (the one stand-in: no MongoDB server can run on these machines).

The services themselves are started by ``make test`` (scripts/services.sh); a test that
finds them down fails with a message saying so, never falls back to a mock.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_REDIS_DB = int(os.environ.get("VIDEO_TEST_REDIS_DB", "9"))


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
# Asset URIs name the data root (include/assets.py); the tests give each run its own data root on one
# metadata DB, where a second URI for the same Asset name would stay inactive: pin one URI for all.
os.environ.setdefault("VIDEO_ASSET_DATA_ROOT", os.environ.get("AIRFLOW_VAR_DATA_ROOT", str(ROOT / "var" / "data" / "root")))


def _scratch_redis(db: int):
    from tests.support.plays import redis_client

    client = redis_client(db)
    try:
        client.ping()
    except Exception as exc:  # pragma: no cover - environment problem
        pytest.fail(f"Redis is not answering on 127.0.0.1 ({exc}); run `scripts/services.sh start`")
    client.flushdb()
    return client


@pytest.fixture
def redis_db():
    """A real Redis client on a scratch database (flushed before and after)."""
    client = _scratch_redis(TEST_REDIS_DB)
    yield client
    client.flushdb()


@pytest.fixture
def oracle_redis():
    """A second real Redis database for the legacy oracle (test db + 1), flushed before and after."""
    client = _scratch_redis(TEST_REDIS_DB + 1)
    yield client
    client.flushdb()


@pytest.fixture
def mysql_db():
    """A fresh scratch MariaDB database ``test_<random>``; yields its name (dropped after)."""
    from tests.support.plays import mysql_conn

    name = f"test_{uuid.uuid4().hex[:10]}"
    try:
        conn = mysql_conn()
    except Exception as exc:  # pragma: no cover - environment problem
        pytest.fail(f"MariaDB is not answering on 127.0.0.1 ({exc}); run `scripts/services.sh start`")
    conn.cursor().execute(f"CREATE DATABASE `{name}`")
    yield name
    conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


@pytest.fixture
def mongo():
    """A mongomock ``video`` database (patched for pymongo >= 4.13 bulk operations)."""
    import mongomock

    from tests.support import mongomock_shim

    mongomock_shim.install()
    return mongomock.MongoClient()["video"]
