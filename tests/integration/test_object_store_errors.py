"""Bad input on object storage (issue 23): a wrong endpoint, a missing bucket, refused credentials and an
object replaced by garbage (Parquet, JSON) each give one line naming the ``video_storage`` connection and
the URL, never the secret, from the CLI and from the dashboard's pages (HTTP 503, not a 500)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from include.storage import DataRoot
from tests.conftest import TEST_REDIS_DB
from tests.integration.test_video_dashboard_plugin import _write_day
from tests.support.auth import token
from tests.support.plugins import load_plugin
from tests.support.s3 import s3_server
from video_analytics import conventions as conv

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2014, 1, 7)
CASES = ["wrong endpoint", "missing bucket", "refused credentials", "garbage Parquet", "garbage JSON"]
GARBAGE = {"garbage Parquet": conv.plays_path(conv.ymd(DAY), "contrib", "vid.parquet"),
           "garbage JSON": conv.online_time_path(DAY, "totals.json")}


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    """A store that refuses every request's credentials."""
    with s3_server(tmp_path_factory.mktemp("moto-strict"), check_credentials=True) as server:
        yield server


@pytest.fixture
def day_root(bucket):
    """A bucket holding a processed day (``video_storage`` set to reach it)."""
    _write_day(DataRoot(f"s3://{bucket}/root"))
    return bucket


def _break(case: str, s3, strict, bucket: str) -> tuple[str, str, str, str]:
    """Break the store as ``case`` says: ``(connection, data root URL, URL the message names, secret)``."""
    url = f"s3://{bucket}/root"
    if case == "wrong endpoint":
        return s3.connection(endpoint="http://127.0.0.1:9"), url, f"s3://{bucket}", s3.secret
    if case == "missing bucket":
        return s3.connection(), "s3://video-no-such-bucket/root", "s3://video-no-such-bucket", s3.secret
    if case == "refused credentials":
        return strict.connection(), url, f"s3://{bucket}", strict.secret
    s3.put(bucket, f"root/{GARBAGE[case]}", b"PAR1 \x00\x01 not what it should be {")
    return s3.connection(), url, f"{url}/{GARBAGE[case]}", s3.secret


def _assert_one_line(lines: list[str], text: str, case: str, where: str, secret: str) -> None:
    assert len(lines) == 1, text
    assert "video_storage" in lines[0] and where in lines[0], lines[0]
    if case.startswith("garbage"):
        assert f"not {case.split()[1]}" in lines[0], lines[0]
    assert secret not in text and "Traceback" not in text


@pytest.mark.parametrize("case", CASES)
def test_cli_gives_one_line_naming_the_connection_and_url(s3, strict, day_root, case):
    conn, url, where, secret = _break(case, s3, strict, day_root)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}", "AIRFLOW_CONN_VIDEO_STORAGE": conn,
           "AIRFLOW_CONN_VIDEO_REDIS": f"redis://127.0.0.1:{os.environ.get('VIDEO_REDIS_PORT', '6379')}/"
                                       f"{TEST_REDIS_DB}"}
    # `summary` reads the day's JSON; `verify` reads its Parquet results (a failed check names the object)
    command = "verify" if case == "garbage Parquet" else "summary"
    res = subprocess.run([sys.executable, "-m", "include.cli", command, "--date", DAY.isoformat(), "--data-root",
                          url], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if "video_storage" in ln]
    assert all(" error: " in ln or "[FAIL]" in ln for ln in lines), res.stderr
    _assert_one_line(lines, res.stderr, case, where, secret)


@pytest.fixture
def http(monkeypatch):
    mod = load_plugin("video_dashboard_plugin")
    client = TestClient(mod.VideoDashboardPlugin.fastapi_apps[0]["app"], raise_server_exceptions=False)
    client.headers["Authorization"] = f"Bearer {token()}"
    return client


@pytest.mark.parametrize("case", CASES)
def test_dashboard_pages_give_one_line_naming_the_connection_and_url(s3, strict, day_root, http, monkeypatch,
                                                                     case):
    conn, url, where, secret = _break(case, s3, strict, day_root)
    monkeypatch.setenv("AIRFLOW_CONN_VIDEO_STORAGE", conn)
    monkeypatch.setenv("AIRFLOW_VAR_DATA_ROOT", url)
    paths = ["/day/2014-01-07"] if case == "garbage Parquet" else ["/", "/day/2014-01-07", "/days.csv"]
    for path in paths:
        page = http.get(path)
        assert page.status_code == 503, (path, page.status_code, page.text[:300])
        lines = [ln for ln in page.text.splitlines() if "could not be read" in ln]
        _assert_one_line(lines, page.text, case, where, secret)


def test_day_page_reads_a_video_from_object_storage(s3, day_root, http, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_DATA_ROOT", f"s3://{day_root}/root")
    page = http.get("/day/2014-01-07?vid=1000001")
    assert page.status_code == 200, page.text[:300]
    assert "Heat map of 1000001" in page.text and "data-start='0' data-end='4' data-value='9'" in page.text
