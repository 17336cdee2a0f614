"""The UI view of verification reports (plugins/verify_reports_plugin.py)."""

import datetime as dt
import importlib.util
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from include.storage import DataRoot
from include.verify import build_report
from video_analytics.conventions import report_path

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "verify_reports_plugin.py"


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_DATA_ROOT", str(tmp_path))
    spec = importlib.util.spec_from_file_location("verify_reports_plugin", PLUGIN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.VerifyReportsPlugin.external_views[0]["href"] == "/video-reports/"
    return TestClient(mod.VerifyReportsPlugin.fastapi_apps[0]["app"]), DataRoot(str(tmp_path))


def test_lists_reports_with_their_result(client):
    http, root = client
    assert "no reports yet" in http.get("/").text
    day = dt.date(2014, 1, 7)
    root.write_json(build_report(day, {"plays": [{"name": "traffic", "ok": False, "detail": "1 != 2"}]}),
                    report_path(day))
    page = http.get("/").text
    assert "2014-01-07" in page and "FAILED: plays.traffic" in page
    detail = http.get("/2014-01-07").text
    assert "[FAIL] plays.traffic: 1 != 2" in detail
    assert http.get("/2014-01-08").status_code == 404
