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
CSV_ROUTES = ["/days.csv", *(f"/day/2014-01-07/{t}.csv" for t in
                             ("summary", "top-plays", "checks", "rejects", "quarantine", "retention"))]


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


@pytest.mark.parametrize("path", ROUTES + CSV_ROUTES)
def test_every_route_refuses_requests_without_a_valid_token(client, path):
    http, root = client
    _write_day(root)
    assert http.get(path).status_code == 401
    assert http.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code in (401, 403)
    assert http.get(path, cookies={"_token": "not-a-jwt"}).status_code in (401, 403)
    assert http.get(path, headers={"Authorization": f"Bearer {_token(role=None, username='nobody')}"}).status_code == 403
    viewer = _token(role="viewer", username="viewer")
    ok = http.get(path, cookies={"_token": viewer})
    assert ok.status_code in (200, 404)  # authorised: page or "no such"
    if path in CSV_ROUTES:  # every table's CSV: a download
        assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/csv")
        assert "attachment" in ok.headers["content-disposition"]


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
    assert f"<td class='l'>{escaped}</td><td class='l category' title='{escaped}'>{escaped}</td>" in day  # vid, kid
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


# ---- issue 26: calendar gaps, last complete day, run links, reasons, names, curve, CSV --------------------

def _older_day(root: DataRoot, day: dt.date, ok: bool = True) -> None:
    root.write_json({"users": 1, "online_seconds": 10, "rows_in": 10, "rejects": 0}, conv.online_time_path(day, "totals.json"))
    root.write_json(build_report(day, {"plays": [{"name": "x", "ok": ok, "detail": ""}]}), conv.report_path(day))


def test_overview_axis_has_gaps_and_says_the_last_complete_day(client, auth):
    http, root = client
    _write_day(root)  # 2014-01-07: verify failed
    _older_day(root, dt.date(2014, 1, 4))  # passed; 01-05 and 01-06 have nothing
    page = http.get("/?days=7", headers=auth).text
    assert re.findall(r"<tr data-day='([^']*)'( class='gap')?>", page) == [
        ("2014-01-07", ""), ("2014-01-06", " class='gap'"), ("2014-01-05", " class='gap'"), ("2014-01-04", ""),
        ("2014-01-03", " class='gap'"), ("2014-01-02", " class='gap'"), ("2014-01-01", " class='gap'")]
    activity = page[page.index("id='chart-activity'"):page.index("id='chart-rejects'")]
    assert re.findall(r"data-series='active users \(window\)' data-x='([^']*)'", activity) == ["01-04", "01-07"]
    assert activity.count("<polyline") == 0  # two days with results, apart: two lone points, no line across the gap
    last = page[page.index("id='last-complete'"):]
    hours = (dt.datetime.now(dt.UTC) - dt.datetime(2014, 1, 5, tzinfo=dt.UTC)).total_seconds() / 3600
    assert "2014-01-04" in last[:300]
    shown = float(re.search(r"class='hours'>([0-9,]+)<", last).group(1).replace(",", ""))
    assert abs(shown - hours) <= 1
    csv_text = http.get("/days.csv?days=7", headers=auth).text.splitlines()
    assert csv_text[0].startswith("day,results,users") and len(csv_text) == 8
    assert csv_text[2].startswith("2014-01-06,no,")


def test_no_complete_day_is_said(client, auth):
    http, root = client
    _write_day(root)
    assert "No complete day yet" in http.get("/", headers=auth).text


@pytest.fixture
def failed_run():
    """A failed ``daily_analytics`` run of 1999-03-04 in the metadata DB (its own date: no other test's)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session
    from sqlalchemy import delete, insert

    run_id = "manual__1999-03-04T00:00:00+00:00"  # Airflow refuses run ids with quotes or markup

    def clean(s):
        s.execute(delete(TI).where(TI.dag_id == "daily_analytics", TI.run_id == run_id))
        s.execute(delete(DagRun).where(DagRun.dag_id == "daily_analytics", DagRun.run_id == run_id))

    with create_session() as s:
        clean(s)
        s.add(DagRun(dag_id="daily_analytics", run_id=run_id, run_type="manual", state="failed",
                     logical_date=dt.datetime(1999, 3, 4, tzinfo=dt.UTC)))
        s.flush()
        for task_id, map_index, state in (("verify", -1, "failed"), ("online_time.compute_shard", 2, "failed"),
                                          ("cleanup", -1, "upstream_failed"), ("plays.publish", -1, "success")):
            s.execute(insert(TI.__table__).values(id=__import__("uuid").uuid4(), dag_id="daily_analytics", run_id=run_id,
                                                  task_id=task_id, map_index=map_index, state=state, try_number=3,
                                                  pool="default_pool", pool_slots=1))
    yield run_id
    with create_session() as s:
        clean(s)


def test_a_day_links_to_its_run_and_its_failed_tasks_logs(tmp_path, monkeypatch, auth, failed_run):
    monkeypatch.setenv("AIRFLOW_VAR_DATA_ROOT", str(tmp_path))
    root = DataRoot(str(tmp_path))
    day = dt.date(1999, 3, 4)
    _older_day(root, day, ok=False)
    app = load_plugin("video_dashboard_plugin").VideoDashboardPlugin.fastapi_apps[0]["app"]
    http = TestClient(app, root_path="/ui-base/video-dashboard")
    run = "/ui-base/dags/daily_analytics/runs/manual__1999-03-04T00%3A00%3A00%2B00%3A00"
    for page in (http.get("/?days=3", headers=auth).text, http.get("/day/1999-03-04", headers=auth).text):
        assert "<script" not in page
        assert f"<a class='run-link' href='{run}'>failed</a>" in page
        assert re.findall(r"class='task-log' href='([^']*)'>log of ([^<]*)<", page) == [
            (f"{run}/tasks/online_time.compute_shard/mapped/2?try_number=3", "online_time.compute_shard[2]"),
            (f"{run}/tasks/verify?try_number=3", "verify")]
    overview = http.get("/?days=3", headers=auth).text
    assert re.search(r"<tr data-day='1999-03-03' class='gap'>.*?<span class='none'>–</span>", overview)
    assert "1999-03-04,yes," in http.get("/days.csv?days=3", headers=auth).text
    assert failed_run in http.get("/days.csv?days=3", headers=auth).text.replace('"', "")


def test_day_page_names_categories_and_breaks_down_reasons(client, auth):
    http, root = client
    _write_day(root)
    root.write_json({"names": {"music": HOSTILE}}, "catalog/categories.json")
    root.write_table(pa.table({"file": ["f"] * 3, "line": [1, 2, 3], "reason": ["bad date", HOSTILE, "bad date"],
                               "raw": ["=cmd|' /C calc'!A0"] * 3}), conv.online_time_path(DAY, "rejects.parquet"))
    root.write_table(pa.table({"key": ["k1", "k2", "k3"], "reason": ["missing_S", "bad_vid", "missing_S"]}),
                     conv.plays_path(conv.ymd(DAY), "quarantine.parquet"))
    page = http.get("/day/2014-01-07", headers=auth)
    assert page.status_code == 200 and "<script" not in page.text
    escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    cats = dict(re.findall(r"<tr data-vid='([^']*)'><td class='l'>[^<]*</td><td class='l category' title='[^']*'>([^<]*)<",
                           page.text))
    assert cats == {"1000001": escaped, "1000002": "nokid"}  # the name (escaped), else the id
    assert f"1000001 ({escaped})" in page.text  # the bar chart's label
    rej = page.text[page.text.index("id='rejects-reasons'"):]
    assert re.findall(r"<tr data-reason='([^']*)'><td class='l'>[^<]*</td><td class='count'>(\d+)</td>", rej)[:2] == [
        ("bad date", "2"), (escaped, "1")]
    quar = page.text[page.text.index("id='quarantine-reasons'"):]
    assert re.findall(r"<tr data-reason='([^']*)'><td class='l'>[^<]*</td><td class='count'>(\d+)</td>", quar)[:2] == [
        ("missing_S", "2"), ("bad_vid", "1")]
    csv_rows = http.get("/day/2014-01-07/rejects.csv", headers=auth).text.splitlines()
    assert csv_rows[0] == "reason,count,share" and csv_rows[1] == "bad date,2,0.002"
    top = http.get("/day/2014-01-07/top-plays.csv", headers=auth).text.splitlines()
    assert top[1] == f"1000001,music,{HOSTILE},90,10.0" and top[2] == "1000002,nokid,nokid,7,5000.5"


def test_csv_cells_are_injection_safe(client, auth):
    http, root = client
    _write_day(root)
    d = conv.ymd(DAY)
    root.write_table(pa.table({"vid": ["=1+1", "@SUM(A1)"], "uid": ["1"] * 2, "kid": ["+cmd", "-2"],
                               "ClickNum": [90, 7], "Traffic": [-1.5, 2.0]}), conv.plays_path(d, "contrib", "vid.parquet"))
    rows = http.get("/day/2014-01-07/top-plays.csv", headers=auth).text.splitlines()
    assert rows[1:] == ["'=1+1,'+cmd,'+cmd,90,-1.5", "'@SUM(A1),'-2,'-2,7,2.0"]


def test_retention_curve_beside_the_heat_map(client, auth):
    http, root = client
    _write_day(root)  # 1000001: ClickNum 90, PlayMapSum {1: 5, 2: 5, 3: 2}
    page = http.get("/day/2014-01-07?vid=1000001", headers=auth).text
    curve = page[page.index("id='chart-retention'"):]
    assert re.findall(r"data-series='share of plays' data-x='([^']*)' data-value='([^']*)'", curve) == [
        ("0 s", str(5 / 90)), ("2 s", str(5 / 90)), ("4 s", str(2 / 90))]
    rows = http.get("/day/2014-01-07/retention.csv?vid=1000001", headers=auth).text.splitlines()
    assert rows[0] == "vid,second,plays,share" and rows[3] == f"1000001,4,2,{2 / 90}"
    assert http.get("/day/2014-01-07/retention.csv", headers=auth).text.splitlines()[1].startswith("1000001,0,5,")
    for vid in ("<script>", "' OR 1=1 --", "x" * 5000):  # any vid: no rows, never an error
        got = http.get("/day/2014-01-07/retention.csv", params={"vid": vid}, headers=auth)
        assert got.status_code == 200 and got.text.splitlines() == ["vid,second,plays,share"]


@pytest.mark.parametrize("path", ["/day/<script>/checks.csv", "/day/2014-13-45/checks.csv", "/day/2014-01-08/checks.csv",
                                  "/day/2014-01-07/evil.csv", "/day/2014-01-07/..%2Freports.csv",
                                  "/day/2014-01-07%00/checks.csv",
                                  "/day/9999999-01-07/checks.csv", "/days.csv?days=0", "/days.csv?days=367",
                                  "/days.csv?days=nan", "/?days=-1", "/?days=1e9"])
def test_hostile_dates_and_tables_in_urls_are_refused(client, auth, path):
    http, root = client
    _write_day(root)
    got = http.get(path, headers=auth)
    assert got.status_code in (404, 422)
    assert "<script" not in got.text and "Traceback" not in got.text


def test_a_huge_video_gives_a_bounded_retention_curve(client, auth):
    http, root = client
    _write_day(root)
    segs = list(range(1, 43_201))
    root.write_table(pa.table({"vid": ["1000001"] * len(segs), "seg": segs, "heat": [1] * len(segs),
                               "plays": [90 - s % 90 for s in segs]}), conv.plays_path(conv.ymd(DAY), "segments.parquet"))
    page = http.get("/day/2014-01-07?vid=1000001", headers=auth)
    curve = page.text[page.text.index("id='chart-retention'"):]
    assert 0 < len(re.findall(r"class='point'", curve)) <= 400 and "(max of 108)" in curve
    assert len(page.content) < 400_000
