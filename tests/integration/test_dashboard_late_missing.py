"""The dashboard plugin's DAU/WAU/MAU charts, late plays and accepted-missing days (issues 25, 26)
through its FastAPI app, with Airflow's real auth manager."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from include.storage import DataRoot
from tests.integration import test_video_dashboard_plugin as base
from tests.integration.test_video_dashboard_plugin import DAY, HOSTILE, _older_day, _write_day
from tests.support.auth import token as _token
from tests.support.plugins import load_plugin
from video_analytics import conventions as conv

client, auth, failed_run = base.client, base.auth, base.failed_run  # its fixtures
NEW_ROUTES = ["/active-users.csv", "/active-users.csv?days=7", "/day/2014-01-07/windows.csv"]


def _window(root: DataRoot, day: dt.date, w: int, users: int, online: int, missing=()) -> None:
    root.write_json({"users": users, "online_seconds": online, "missing_days": [{"day": m} for m in missing]},
                    conv.online_time_path(day, f"w{w}", "totals.json"))


def _windows(root: DataRoot) -> None:
    """01-05: DAU and WAU, its MAU skipped (a log missing); 01-06: nothing; 01-07: all three."""
    d5, d7 = dt.date(2014, 1, 5), DAY
    _older_day(root, d5)
    _window(root, d5, 1, 10, 6000)
    _window(root, d5, 7, 40, 48000)
    root.write_json({"end": "2014-01-05", "window_days": 30, "skipped": "log 2013-12-07.log is missing"},
                    conv.online_time_path(d5, "w30", "skipped.json"))
    _window(root, d7, 1, 12, 3600)
    _window(root, d7, 7, 50, 60000, missing=["2014-01-03"])
    _window(root, d7, 30, 90, 540000, missing=["2014-01-03"])


def _points(page: str, card: str) -> list[tuple[str, str, str]]:
    part = page[page.index(f"id='{card}'"):]
    part = part[:part.index("</svg>")]
    return re.findall(r"data-series='([^']*)' data-x='([^']*)' data-value='([^']*)'", part)


def test_dau_wau_mau_on_one_chart_over_the_calendar_with_gaps(client, auth):
    http, root = client
    _write_day(root)
    _windows(root)
    page = http.get("/?days=7", headers=auth).text
    assert _points(page, "chart-active-users") == [
        ("DAU (1-day window)", "2014-01-05", "10"), ("DAU (1-day window)", "2014-01-07", "12"),
        ("WAU (7-day window)", "2014-01-05", "40"), ("WAU (7-day window)", "2014-01-07", "50"),
        ("MAU (30-day window)", "2014-01-07", "90")]  # 01-06 has nothing; 01-05's MAU was skipped: gaps, not 0
    chart = page[page.index("id='chart-active-users'"):page.index("id='chart-per-user'")]
    assert "<polyline" not in chart  # no line across the gap of 01-06
    assert _points(page, "chart-per-user") == [
        ("DAU (1-day window)", "2014-01-05", "10.0"), ("DAU (1-day window)", "2014-01-07", "5.0"),
        ("WAU (7-day window)", "2014-01-05", "20.0"), ("WAU (7-day window)", "2014-01-07", "20.0"),
        ("MAU (30-day window)", "2014-01-07", "100.0")]  # minutes per active user
    row = re.search(r"<tr data-day='2014-01-07'>(.*?)</tr>", page, re.S).group(1)
    assert re.findall(r"<td class='w(\d+)'>([^<]*)</td>", row) == [("1", "12"), ("7", "50"), ("30", "90")]
    rows = http.get("/active-users.csv?days=7", headers=auth).text.splitlines()
    assert rows[0] == ("day,w1_users,w1_online_seconds,w1_per_user,w1_status,w7_users,w7_online_seconds,w7_per_user,"
                       "w7_status,w30_users,w30_online_seconds,w30_per_user,w30_status")
    assert rows[1] == "2014-01-07,12,3600,300.0,ok,50,60000,1200.0,ok,90,540000,6000.0,ok"
    assert rows[2] == "2014-01-06,,,,none,,,,none,,,,none"
    assert rows[3] == "2014-01-05,10,6000,600.0,ok,40,48000,1200.0,ok,,,,skipped" and len(rows) == 8
    days_csv = http.get("/days.csv?days=7", headers=auth).text.splitlines()
    assert days_csv[0].endswith(",dau,wau,mau,late_plays,accepted_missing") and ",12,50,90,0," in days_csv[1]


def test_day_page_shows_each_window_and_the_days_it_ran_without(client, auth):
    http, root = client
    _write_day(root)
    _windows(root)
    page = http.get("/day/2014-01-07", headers=auth).text
    table = page[page.index("id='windows'"):]
    table = table[:table.index("</table>")]
    rows = dict(re.findall(r"<tr data-window='(\d+)' class='ok'>(.*?)</tr>", table, re.S))
    assert re.search(r"class='users'>12<.*class='per-user'>5\.0 min<", rows["1"])
    assert "<span class='lost'>2014-01-03</span>" in rows["7"] and "<span class='lost'>2014-01-03</span>" in rows["30"]
    skipped = http.get("/day/2014-01-05", headers=auth).text
    assert re.search(r"<tr data-window='30' class='skipped'>.*skipped: log 2013-12-07\.log is missing", skipped)
    rows = http.get("/day/2014-01-07/windows.csv", headers=auth).text.splitlines()
    assert rows == ["window,name,users,online_seconds,per_user,status,missing_days",
                    "1,DAU,12,3600,300.0,ok,", "7,WAU,50,60000,1200.0,ok,2014-01-03", "30,MAU,90,540000,6000.0,ok,2014-01-03"]


def test_late_plays_show_per_day_with_a_hint_and_the_run_to_rerun(tmp_path, monkeypatch, auth, failed_run):
    monkeypatch.setenv("AIRFLOW_VAR_DATA_ROOT", str(tmp_path))
    root = DataRoot(str(tmp_path))
    day = dt.date(1999, 3, 4)
    _older_day(root, day)
    _older_day(root, dt.date(1999, 3, 3))
    root.write_json({"day": "19990304", "remaining": 4}, conv.plays_path("19990304", "cleanup.json"))
    root.write_json({"day": "19990303", "remaining": 2}, conv.plays_path("19990303", "cleanup.json"))
    root.write_json({"kind": "late_plays", "count": 4, "timestamp": "1999-03-05T01:02:03+00:00"},
                    conv.alert_path("daily_analytics", failed_run, "late_plays.json"))
    http = TestClient(load_plugin("video_dashboard_plugin").VideoDashboardPlugin.fastapi_apps[0]["app"],
                      root_path="/ui/video-dashboard")
    run = "/ui/dags/daily_analytics/runs/manual__1999-03-04T00%3A00%3A00%2B00%3A00"
    overview = http.get("/?days=3", headers=auth).text
    cells = dict(re.findall(r"<tr data-day='([^']*)'>.*?<td class='late l'>(.*?)</td>", overview, re.S))
    assert cells["1999-03-04"] == (f"<a class='late-plays' href='{run}' title='re-run the day to pick them up'>"
                                   "4 late</a>")
    assert "href='/ui/video-dashboard/day/1999-03-03'" in cells["1999-03-03"] and "2 late" in cells["1999-03-03"]
    assert "Re-running the day (clear its run in Airflow: the link) picks them up" in overview
    page = http.get("/day/1999-03-04", headers=auth).text
    card = page[page.index("id='late-plays'"):]
    card = card[:card.index("</div>")]
    assert "4 late play(s)" in card and "T_endlist_19990304" in card and "alerted 1999-03-05T01:02:03+00:00" in card
    assert f"Re-running the day picks them up</b>: clear <a class='rerun' href='{run}'>its run</a>" in card
    csv_rows = http.get("/days.csv?days=3", headers=auth).text.splitlines()
    assert csv_rows[1].startswith("1999-03-04,yes,") and ",4," in csv_rows[1]
    # a re-run that picked them up: cleanup says 0 and the page says nothing (the old alert is history)
    root.write_json({"day": "19990304", "remaining": 0}, conv.plays_path("19990304", "cleanup.json"))
    assert "id='late-plays'" not in http.get("/day/1999-03-04", headers=auth).text


def test_days_accepted_as_missing_differ_from_a_plain_gap(client, auth):
    http, root = client
    _write_day(root)  # 2014-01-07 has results
    for d, reason in (("2014-01-06", f"disk lost {HOSTILE}\x00/../../etc"), ("2014-01-07", "partial log")):
        root.write_json({"day": d, "reason": reason, "accepted_by": "<b>ops</b>", "accepted_at": "2014-01-09T10:00:00"},
                        f"missing/{d}.json")
    root.write_bytes(b"\x00not json", "missing/2014-01-04.json")
    page = http.get("/?days=5", headers=auth)
    assert page.status_code == 200 and "<script" not in page.text and "<b>ops" not in page.text
    assert "\x00" not in page.text and "disk lost &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;\ufffd/../../etc" in page.text
    kinds = re.findall(r"<tr data-day='([^']*)'(?: class='([^']*)')?>", page.text)
    assert kinds == [("2014-01-07", "accepted-missing"), ("2014-01-06", "gap accepted-missing"), ("2014-01-05", "gap"),
                     ("2014-01-04", "gap accepted-missing"), ("2014-01-03", "gap")]
    gap = re.search(r"<tr data-day='2014-01-06'[^>]*>(.*?)</tr>", page.text, re.S).group(1)
    assert "log accepted as missing: disk lost &lt;script&gt;" in gap and "by &lt;b&gt;ops&lt;/b&gt;" in gap
    bad = re.search(r"<tr data-day='2014-01-04'[^>]*>(.*?)</tr>", page.text, re.S).group(1)
    assert "unreadable record" in bad and "missing/2014-01-04.json is not JSON" in bad
    assert "<span class='lost' title='partial log'>log accepted as missing</span>" in page.text
    day = http.get("/day/2014-01-07", headers=auth).text
    assert "The log of 2014-01-07 was accepted as missing</b> (<code>missing/2014-01-07.json</code>): partial log" in day
    assert "<a href='/day/2014-01-06'>2014-01-06</a>" in gap  # a day without results: its page says why
    no_day = http.get("/day/2014-01-06", headers=auth)
    assert no_day.status_code == 404 and "No results for 2014-01-06" in no_day.text and "<script" not in no_day.text
    assert "The log of 2014-01-06 was accepted as missing</b>" in no_day.text and "disk lost &lt;script&gt;" in no_day.text
    rows = http.get("/days.csv?days=5", headers=auth).text.splitlines()
    assert rows[1].endswith(",partial log") and re.search(r"2014-01-04\.json is not JSON \(\w+\)$", rows[4])


@pytest.mark.parametrize("path", NEW_ROUTES)
def test_new_routes_need_airflow_auth(client, path):
    http, root = client
    _write_day(root)
    assert http.get(path).status_code == 401
    assert http.get(path, headers={"Authorization": "Bearer not-a-jwt"}).status_code in (401, 403)
    assert http.get(path, headers={"Authorization": f"Bearer {_token(role=None, username='nobody')}"}).status_code == 403
    ok = http.get(path, headers={"Authorization": f"Bearer {_token(role='viewer', username='viewer')}"})
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/csv")


@pytest.mark.parametrize("path", ["/active-users.csv?days=0", "/active-users.csv?days=367", "/active-users.csv?days=nan",
                                  "/active-users.csv?days=<script>", "/day/<script>/windows.csv",
                                  "/day/2014-01-07%00/windows.csv", "/day/..%2F..%2Fetc/windows.csv",
                                  "/day/2014-02-30/windows.csv", "/day/2014-01-08/windows.csv"])
def test_hostile_values_in_new_urls_are_refused(client, auth, path):
    http, root = client
    _write_day(root)
    got = http.get(path, headers=auth)
    assert "Traceback" not in got.text
    if "days=" in path:  # FastAPI's validation error: JSON naming the value, never a page
        assert got.status_code == 422 and got.headers["content-type"] == "application/json"
    else:  # the day's tables, this one among them, and no echo of the input
        assert got.status_code == 404 and "<script" not in got.text
        assert "windows" in got.text or "%2F" in path  # a path outside the routes: FastAPI's own 404


def test_hostile_window_files_show_as_gaps_and_text(client, auth):
    http, root = client
    _write_day(root)
    root.write_json({"users": HOSTILE, "online_seconds": -1}, conv.online_time_path(DAY, "w1", "totals.json"))
    root.write_json({"skipped": HOSTILE + "\x00"}, conv.online_time_path(DAY, "w7", "skipped.json"))
    root.write_bytes(b"\xff\xfe", conv.online_time_path(DAY, "w30", "totals.json"))
    for path in ("/", "/day/2014-01-07", "/active-users.csv", "/day/2014-01-07/windows.csv"):
        got = http.get(path, headers=auth)
        assert got.status_code == 200 and "<script" not in got.text and "\x00" not in got.text, path
    assert _points(http.get("/", headers=auth).text, "chart-active-users") == []
    day = http.get("/day/2014-01-07", headers=auth).text
    assert re.search(r"<tr data-window='7' class='skipped'>.*skipped: &lt;script&gt;", day)
    assert re.search(r"<tr data-window='30' class='unreadable'>.*w30/totals.json is not JSON", day)


def test_windows_late_and_missing_on_an_object_store(tmp_path_factory, monkeypatch):
    """The same reads on S3 (moto): found by listing, a re-run seen by its ETag, garbage in one line."""
    import uuid

    from include import dashboard as dash
    from tests.support.s3 import s3_server

    with s3_server(tmp_path_factory.mktemp("moto")) as s3:
        bucket = f"video-{uuid.uuid4().hex[:10]}"
        s3.create_bucket(bucket)
        monkeypatch.setenv("AIRFLOW_CONN_VIDEO_STORAGE", s3.connection())
        root = DataRoot(f"s3://{bucket}/root")
        _window(root, DAY, 1, 12, 3600)
        root.write_json({"remaining": 2}, conv.plays_path("20140107", "cleanup.json"))
        root.write_json({"day": "2014-01-06", "reason": "disk lost"}, "missing/2014-01-06.json")
        days = ["2014-01-06", "2014-01-07"]
        assert dash.windows(root, days)["2014-01-07"][1]["users"] == 12
        assert dash.late_days(root) == {"2014-01-07"} and dash.late_plays(root, "2014-01-07")["count"] == 2
        assert dash.accepted_missing(root, days)["2014-01-06"]["reason"] == "disk lost"
        _window(root, DAY, 1, 13, 3600)  # a re-run of the day, same size
        assert dash.windows(root, days)["2014-01-07"][1]["users"] == 13
        s3.put(bucket, f"root/{conv.online_time_path(DAY, 'w1', 'totals.json')}", b"not json")
        point = dash.windows(root, days)["2014-01-07"][1]
        assert point["status"] == "unreadable" and f"s3://{bucket}/root/online_time/2014-01-07/w1/totals.json" in point["why"]
