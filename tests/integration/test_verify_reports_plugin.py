"""The UI view of verification reports (plugins/verify_reports_plugin.py).

Every route needs Airflow's own API authentication. Tokens are made the way the API server makes
them (the configured auth manager's ``generate_jwt``) and checked by Airflow's real validation,
which reads the metadata DB (revoked tokens, the DAG's team): `make test` migrates it first.
"""

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from include.storage import DataRoot
from include.verify import build_report
from tests.support.auth import token as _token
from tests.support.plugins import load_plugin
from video_analytics.conventions import report_path


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_DATA_ROOT", str(tmp_path))
    mod = load_plugin("verify_reports_plugin")
    assert mod.VerifyReportsPlugin.external_views[0]["href"] == "/video-reports/"
    return TestClient(mod.VerifyReportsPlugin.fastapi_apps[0]["app"]), DataRoot(str(tmp_path))


@pytest.fixture
def auth():
    return {"Authorization": f"Bearer {_token()}"}


def test_lists_reports_with_their_result(client, auth):
    http, root = client
    assert "no reports yet" in http.get("/", headers=auth).text
    day = dt.date(2014, 1, 7)
    root.write_json(build_report(day, {"plays": [{"name": "traffic", "ok": False, "detail": "1 != 2"}]}),
                    report_path(day))
    page = http.get("/", headers=auth).text
    assert "2014-01-07" in page and "FAILED: plays.traffic" in page
    detail = http.get("/2014-01-07", headers=auth).text
    assert "[FAIL] plays.traffic: 1 != 2" in detail
    assert http.get("/2014-01-08", headers=auth).status_code == 404


@pytest.mark.parametrize("path", ["/", "/2014-01-07", "/2014-01-08"])
def test_every_route_refuses_requests_without_a_valid_token(client, path):
    http, root = client
    day = dt.date(2014, 1, 7)
    root.write_json(build_report(day, {"plays": [{"name": "traffic", "ok": True, "detail": ""}]}), report_path(day))
    assert http.get(path).status_code == 401
    assert http.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code in (401, 403)
    assert http.get(path, cookies={"_token": "not-a-jwt"}).status_code in (401, 403)
    # a well-formed JWT signed with another key
    import jwt

    forged = jwt.encode({"sub": "admin", "role": "admin", "aud": "apache-airflow", "exp": 4102444800},
                        "not-the-secret", algorithm="HS512")
    assert http.get(path, headers={"Authorization": f"Bearer {forged}"}).status_code in (401, 403)
    # a valid token of a user without any role: authenticated, not authorised
    assert http.get(path, headers={"Authorization": f"Bearer {_token(role=None, username='nobody')}"}).status_code == 403


def test_valid_bearer_token_or_ui_cookie_is_accepted(client):
    http, _ = client
    token = _token()
    assert http.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # the UI sends the `_token` cookie it got at login
    assert http.get("/", cookies={"_token": token}).status_code == 200
    viewer = _token(role="viewer", username="viewer")
    assert http.get("/", cookies={"_token": viewer}).status_code == 200


def test_hostile_values_are_escaped(tmp_path, monkeypatch, auth):
    """A check named with a script tag and a data root whose path has one come out as text."""
    root_dir = tmp_path / "<script>root"
    root_dir.mkdir()
    monkeypatch.setenv("AIRFLOW_VAR_DATA_ROOT", str(root_dir))
    http = TestClient(load_plugin("verify_reports_plugin").VerifyReportsPlugin.fastapi_apps[0]["app"])
    day = dt.date(2014, 1, 7)
    DataRoot(str(root_dir)).write_json(
        build_report(day, {"plays": [{"name": "<script>alert(1)</script>", "ok": False, "detail": "<b>"}]}),
        report_path(day))
    for path in ("/", "/2014-01-07"):
        page = http.get(path, headers=auth)
        assert page.status_code == 200
        assert "<script" not in page.text and "plays.&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_index_lists_the_latest_reports_and_says_how_many_are_left_out(client, auth):
    http, root = client
    first = dt.date(2014, 1, 1)
    for i in range(65):
        day = first + dt.timedelta(days=i)
        root.write_json(build_report(day, {"plays": [{"name": "traffic", "ok": True, "detail": ""}]}), report_path(day))
    page = http.get("/", headers=auth).text
    shown = re.findall(r"<tr><td><a href='([^']+)'>", page)
    assert shown[0] == "2014-03-06" and len(shown) == 60 and shown[-1] == "2014-01-06"
    assert "The latest 60 of 65 reports; 5 older not shown." in page
