"""Fixtures of the object-store tests: a private moto server (``tests.support.s3``) and a fresh bucket."""

from __future__ import annotations

import uuid

import pytest

from tests.support.s3 import s3_server


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto server of the module's own, stopped by pid."""
    with s3_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def bucket(s3, monkeypatch):
    """A fresh bucket on ``s3``; ``AIRFLOW_CONN_VIDEO_STORAGE`` reaches it."""
    name = f"video-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(name)
    monkeypatch.setenv("AIRFLOW_CONN_VIDEO_STORAGE", s3.connection())
    return name
