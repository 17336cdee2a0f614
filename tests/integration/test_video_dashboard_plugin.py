"""The dashboard plugin (plugins/video_dashboard_plugin.py) through its FastAPI app: pages, numbers,
empty state and Airflow authentication on every route. Tokens are made and checked by Airflow's real
auth manager, which reads the metadata DB (`make test` migrates it first)."""

import datetime as dt
import re

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from include.storage import DataRoot
from include.verify import build_report
from tests.support.auth import token as _token
from tests.support.plugins import load_plugin
from video_analytics import conventions as conv

DAY = dt.date(2014, 1, 7)
ROUTES = ["/", "/day/2014-01-07", "/day/2014-01-08", "/run/daily_analytics/manual__2014-01-07T00:00:00+00:00"]


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_DATA_ROOT", str(tmp_path))
    mod = load_plugin("video_dashboard_plugin")
    views = {v["destination"]: v["href"] for v in mod.VideoDashboardPlugin.external_views}
    assert views == {"nav": "/video-dashboard/", "dag_run": "/video-dashboard/run/{DAG_ID}/{RUN_ID}"}
    return TestClient(mod.VideoDashboardPlugin.fastapi_apps[0]["app"]), DataRoot(str(tmp_path))


@pytest.fixture
def auth():
    return {"Authorization": f"Bearer {_token()}"}


def _write_day(root: DataRoot) -> None:
    root.write_table(pa.table({"userid": [1, 2, 3], "online_seconds": [60, 600, 6000], "sessions": [1, 1, 2]}),
                     conv.online_time_path(DAY, "online_time.parquet"))
    root.write_json({"users": 3, "online_seconds": 6660, "rows_in": 1000, "rejects": 20},
                    conv.online_time_path(DAY, "totals.json"))
    d = conv.ymd(DAY)
    root.write_json({"ingested": 97, "unique": 100, "quarantined": 3}, conv.plays_path(d, "ingest.json"))
    root.write_table(pa.table({"vid": ["1000001", "1000002"], "uid": ["1000"] * 2, "kid": ["music", "nokid"],
                               "ClickNum": [90, 7], "Traffic": [10.0, 5000.5]}), conv.plays_path(d, "contrib", "vid.parquet"))
    root.write_table(pa.table({"vid": ["1000001"] * 3, "seg": [1, 2, 3], "heat": [9, 9, 4], "plays": [5, 5, 2]}),
                     conv.plays_path(d, "segments.parquet"))
    root.write_json(build_report(DAY, {"online_time": [], "plays": [{"name": "x", "ok": False, "detail": ""}]}),
                    conv.report_path(DAY))


def _cell(page: str, row_attr: str, cls: str) -> str:
    row = re.search(rf"<tr {row_attr}>(.*?)</tr>", page, re.S).group(1)
    return re.search(rf"<td class='{cls}[^']*'>(.*?)</td>", row, re.S).group(1)


def test_empty_state_explains_what_to_do(client, auth):
    http, _ = client
    page = http.get("/", headers=auth)
    assert page.status_code == 200
    assert "No results yet" in page.text and "Trigger" in page.text and "make demo" in page.text


def test_pages_show_the_data_roots_numbers(client, auth):
    http, root = client
    _write_day(root)
    page = http.get("/", headers=auth).text
    assert _cell(page, "data-day='2014-01-07'", "users") == "3"
    assert _cell(page, "data-day='2014-01-07'", "online") == "6,660"
    assert _cell(page, "data-day='2014-01-07'", "reject-rate") == "2.00%"
    assert _cell(page, "data-day='2014-01-07'", "quarantine-rate") == "3.00%"
    assert _cell(page, "data-day='2014-01-07'", "verify").startswith("failed: plays.x")
    assert page.count("class='threshold'") == 2
    day = http.get("/day/2014-01-07", headers=auth).text
    assert _cell(day, "data-vid='1000001'", "clicknum") == "90"
    assert "Heat map of 1000001" in day and "data-start='0' data-end='4' data-value='9'" in day
    assert re.findall(r"class='bar' data-vid='([^']*)'", day) == ["1000001", "1000002", "1000002", "1000001"]
    assert sum(int(v) for v in re.findall(r"class='bar' data-lo='[^']*' data-hi='[^']*' data-value='(\d+)'", day)) == 3
    other = http.get("/day/2014-01-07?vid=1000002", headers=auth).text
    assert "Heat map of 1000002" in other and "no segments" in other
    # a run's day is its logical date in the metadata DB (the stack test shows a real run's tab)
    unknown = http.get("/run/daily_analytics/scheduled__2014-01-07T00:00:00+00:00", headers=auth)
    assert unknown.status_code == 404 and "No run" in unknown.text
    missing = http.get("/day/2014-01-08", headers=auth)
    assert missing.status_code == 404 and "No results for 2014-01-08" in missing.text
    assert http.get("/day/not-a-day", headers=auth).status_code == 404
    assert "only" in http.get("/run/other_dag/r1", headers=auth).text


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_refuses_requests_without_a_valid_token(client, path):
    http, root = client
    _write_day(root)
    assert http.get(path).status_code == 401
    assert http.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code in (401, 403)
    assert http.get(path, cookies={"_token": "not-a-jwt"}).status_code in (401, 403)
    assert http.get(path, headers={"Authorization": f"Bearer {_token(role=None, username='nobody')}"}).status_code == 403
    viewer = _token(role="viewer", username="viewer")
    assert http.get(path, cookies={"_token": viewer}).status_code in (200, 404)  # authorised: page or "no such"


HOSTILE = "<script>alert('x')</script>"


def _hostile_day(root: DataRoot) -> None:
    """A day whose category, vid and check name are script tags."""
    _write_day(root)
    d = conv.ymd(DAY)
    root.write_table(pa.table({"vid": [HOSTILE, "1000002"], "uid": ["1000"] * 2, "kid": [HOSTILE, "nokid"],
                               "ClickNum": [90, 7], "Traffic": [10.0, 5000.5]}), conv.plays_path(d, "contrib", "vid.parquet"))
    root.write_table(pa.table({"vid": [HOSTILE] * 2, "seg": [1, 2], "heat": [9, 4], "plays": [5, 2]}),
                     conv.plays_path(d, "segments.parquet"))
    root.write_json(build_report(DAY, {"online_time": [], "plays": [{"name": HOSTILE, "ok": False, "detail": ""}]}),
                    conv.report_path(DAY))


def test_hostile_values_are_escaped_on_every_page(tmp_path, monkeypatch, auth):
    """Script tags in the data (category, vid, check name), the data root's path, the URL and the mount
    path come out as text on every page."""
    root_dir = tmp_path / "<script>root"
    root_dir.mkdir()
    monkeypatch.setenv("AIRFLOW_VAR_DATA_ROOT", str(root_dir))
    app = load_plugin("video_dashboard_plugin").VideoDashboardPlugin.fastapi_apps[0]["app"]
    http = TestClient(app, root_path="/video-dashboard'><script>")
    pages = {"empty": http.get("/", headers=auth)}
    _hostile_day(DataRoot(str(root_dir)))
    for path in ("/", "/day/2014-01-07", "/day/2014-01-07?vid=<script>", "/day/2014-01-08", "/day/<script>",
                 "/run/<script>/r1", "/run/daily_analytics/<script>"):
        pages[path] = http.get(path, headers=auth)
    for path, page in pages.items():
        assert page.status_code in (200, 404), path
        assert "<script" not in page.text.lower(), path
        assert "&lt;script&gt;" in page.text, path
    day = pages["/day/2014-01-07"].text
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    assert _cell(day, re.escape(f"data-vid='{escaped}'"), "clicknum") == "90"
    assert f"<td class='l'>{escaped}</td><td class='l'>{escaped}</td>" in day  # its vid and category
    assert "class='run'" in day and "Heat map of &lt;script&gt;" in day
    assert "failed: plays.&lt;script&gt;" in _cell(pages["/"].text, "data-day='2014-01-07'", "verify")


def test_a_huge_day_gives_a_bounded_page(client, auth):
    """A 24-hour video (43,200 segments, every neighbour a different heat), 200,000 videos and 1,000
    checks: the day page stays under 400 kB, its heat strip one bar per pixel, its tables the top 10."""
    http, root = client
    _write_day(root)
    d = conv.ymd(DAY)
    n = 200_000
    root.write_table(pa.table({"vid": [f"{i:07d}" for i in range(n)], "uid": ["1"] * n, "kid": ["k"] * n,
                               "ClickNum": list(range(n)), "Traffic": [1.0] * n}), conv.plays_path(d, "contrib", "vid.parquet"))
    segs = list(range(1, 43_201))
    root.write_table(pa.table({"vid": [f"{n - 1:07d}"] * len(segs), "seg": segs, "heat": [1 + s % 997 for s in segs],
                               "plays": [1] * len(segs)}), conv.plays_path(d, "segments.parquet"))
    root.write_json(build_report(DAY, {"plays": [{"name": f"c{i}", "ok": True, "detail": ""} for i in range(1_000)]}),
                    conv.report_path(DAY))
    page = http.get("/day/2014-01-07", headers=auth)
    assert page.status_code == 200
    assert len(page.content) < 400_000
    marks = re.findall(r"class='(bucket|run|bar|point)'", page.text)
    assert 0 < marks.count("bucket") <= 750 and "run" not in marks and marks.count("bar") <= 2 * 10 + 60
    assert "max heat per 116 s" in page.text
    assert len(re.findall(r"<tr data-vid=", page.text)) == 10 and page.text.count("<option ") == 100
    assert "The 10 most played of 200,000 videos; 199,990 not shown." in page.text
    assert "200 of 1,000 checks shown; 800 not shown." in page.text
