"""The dashboard's windows (DAU, WAU, MAU), late plays, accepted-missing days and its bounded cache
(video_analytics.dashboard, video_analytics.charts, include.dashboard)."""

from __future__ import annotations

import datetime as dt
import re

import pyarrow as pa
import pytest

from include import dashboard as dash
from include.storage import DataRoot
from video_analytics import charts
from video_analytics import conventions as conv
from video_analytics import dashboard as core

DAY = dt.date(2014, 1, 7)


def test_window_point_reads_totals_and_gives_gaps_for_the_rest():
    ok = core.window_point({"users": 4, "online_seconds": 600, "missing_days": [{"day": "2014-01-03"}, "junk"]}, None)
    assert ok == {"status": "ok", "users": 4, "online_seconds": 600, "per_user": 150.0,
                  "missing_days": ["2014-01-03"], "why": ""}
    skipped = core.window_point(None, {"skipped": "log 2014-01-01.log is missing"})
    assert skipped["status"] == "skipped" and skipped["users"] is None and "2014-01-01" in skipped["why"]
    assert core.window_point(None, None)["status"] == "none"
    assert core.window_point({"unreadable": "x is not JSON"}, None)["status"] == "unreadable"
    # hostile numbers are unknown (a gap), never drawn as 0 or as text
    for bad in ("<script>", -5, float("nan"), float("inf"), True, None, [1], {"a": 1}):
        p = core.window_point({"users": bad, "online_seconds": bad}, None)
        assert p["status"] == "ok" and p["users"] is None and p["online_seconds"] is None and p["per_user"] is None
    assert core.window_point({"users": 0, "online_seconds": 0}, None)["per_user"] is None  # no users: no average


def test_late_plays_come_from_cleanup_then_the_alert():
    assert core.late_plays({"remaining": 3}, {"count": 9, "timestamp": "2014-01-08T02:00:00"}, "2014-01-07") == {
        "count": 3, "list": "T_endlist_20140107", "alerted_at": "2014-01-08T02:00:00"}
    assert core.late_plays({"remaining": 0}, {"count": 9}, "2014-01-07") is None  # a re-run picked them up
    assert core.late_plays(None, {"count": 2}, "2014-01-07")["count"] == 2
    for bad in (None, [], "x", {"remaining": "<script>"}, {"remaining": -1}):
        assert core.late_plays(bad, None, "2014-01-07") is None


def test_accepted_missing_records_as_text():
    rec = {"day": "2014-01-06", "reason": "disk lost", "accepted_by": "ops", "accepted_at": "2014-01-09T10:00:00"}
    assert core.accepted_missing(rec) == {"reason": "disk lost", "accepted_by": "ops", "accepted_at": "2014-01-09T10:00:00"}
    assert core.accepted_missing(None) is None
    assert core.accepted_missing(["not", "a", "record"])["reason"].startswith("unreadable record")
    assert len(core.accepted_missing({"reason": "x" * 5000})["reason"]) == 300


def test_a_shared_line_chart_draws_every_series_on_one_scale_with_gaps():
    svg = charts.line_chart(["2014-01-05", "2014-01-06", "2014-01-07"],
                            [("DAU", [10, None, 20], str), ("WAU", [30, None, 40], str), ("MAU", [None, None, 80], str)],
                            "active users", shared=True)
    points = re.findall(r"class='point' data-series='([^']*)' data-x='([^']*)' data-value='([^']*)'", svg)
    assert points == [("DAU", "2014-01-05", "10"), ("DAU", "2014-01-07", "20"), ("WAU", "2014-01-05", "30"),
                      ("WAU", "2014-01-07", "40"), ("MAU", "2014-01-07", "80")]
    assert "<polyline" not in svg  # each series breaks at the gap
    ys = {v: float(y) for y, v in re.findall(r"cy='([^']*)'[^>]*data-value='([^']*)'", svg)}
    assert ys["80"] < ys["40"] < ys["20"] < ys["10"]  # one scale: a larger value is higher
    assert abs((ys["10"] - ys["20"]) - (ys["20"] - ys["30"])) < 0.2  # and linear across series


@pytest.fixture
def root(tmp_path):
    return DataRoot(str(tmp_path))


def _window(root: DataRoot, day: dt.date, w: int, users: int, online: int, missing=()) -> None:
    root.write_json({"users": users, "online_seconds": online, "missing_days": [{"day": m} for m in missing]},
                    conv.online_time_path(day, f"w{w}", "totals.json"))


def test_windows_read_each_days_folders(root):
    _window(root, DAY, 1, 2, 120)
    _window(root, DAY, 7, 5, 3000, missing=["2014-01-03"])
    root.write_json({"skipped": "no log for 2013-12-09"}, conv.online_time_path(DAY, "w30", "skipped.json"))
    root.write_bytes(b"{not json", conv.online_time_path(DAY - dt.timedelta(days=1), "w1", "totals.json"))
    got = dash.windows(root, [DAY.isoformat(), "2014-01-06", "2014-01-05"])
    assert [got["2014-01-07"][w]["status"] for w in (1, 7, 30)] == ["ok", "ok", "skipped"]
    assert got["2014-01-07"][7]["missing_days"] == ["2014-01-03"] and got["2014-01-07"][1]["per_user"] == 60
    assert got["2014-01-06"][1]["status"] == "unreadable" and "2014-01-06/w1/totals.json" in got["2014-01-06"][1]["why"]
    assert {p["status"] for p in got["2014-01-05"].values()} == {"none"}


def test_timeline_rows_carry_windows_late_plays_and_accepted_missing_days(root):
    root.write_json({"users": 1, "online_seconds": 1, "rows_in": 1, "rejects": 0}, conv.online_time_path(DAY, "totals.json"))
    _window(root, DAY, 1, 1, 1)
    root.write_json({"remaining": 4, "run_id": "r"}, conv.plays_path("20140107", "cleanup.json"))
    root.write_json({"day": "2014-01-06", "reason": "disk lost", "accepted_by": "ops", "accepted_at": "t"},
                    "missing/2014-01-06.json")
    rows = {r["day"]: r for r in dash.timeline(root, 3, DAY)}
    assert rows["2014-01-07"]["windows"][1]["users"] == 1 and rows["2014-01-07"]["windows"][30]["status"] == "none"
    assert rows["2014-01-07"]["late"]["count"] == 4 and rows["2014-01-06"]["late"] is None
    assert rows["2014-01-06"]["missing"] and rows["2014-01-06"]["accepted_missing"]["reason"] == "disk lost"
    assert rows["2014-01-05"]["accepted_missing"] is None


def _weights() -> list[int]:
    """What each cached value holds, counted here (not by the module): list items and array elements."""
    def n(v):
        if isinstance(v, dict):
            return sum(n(x) for x in v.values())
        if isinstance(v, list | tuple):
            return len(v) + sum(n(x) for x in v if isinstance(x, list | tuple | dict))
        return int(getattr(v, "size", 0))

    return [n(entry[0] if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], int) else entry)
            for entry in dash._CACHE.values()]  # noqa: SLF001 - the bound under test


def test_the_heat_map_cache_keeps_small_views_within_a_bound(root, monkeypatch):
    """Twenty videos of 43,200 segments each (a 24-hour timeline, every neighbour a different heat): the
    cache keeps each heat strip as at most one mark per pixel, never the segment rows, and holds at most
    ``CACHE_MAX_ITEMS`` items, whatever is asked."""
    segs = list(range(1, 43_201))
    vids = [f"v{i}" for i in range(20)]
    root.write_table(pa.table({"vid": [v for v in vids for _ in segs], "seg": segs * len(vids),
                               "heat": [1 + s % 997 for s in segs] * len(vids), "plays": [1] * len(segs) * len(vids)}),
                     conv.plays_path("20140107", "segments.parquet"))
    monkeypatch.setattr(dash, "CACHE_MAX_ITEMS", 40_000)
    dash._CACHE.clear()  # noqa: SLF001
    width = charts.HEAT_WIDTH
    for vid in vids:
        view = dash.heat_view(root, DAY.isoformat(), vid, width)
        assert 0 < len(view["runs"]) <= width and view["count"] > 40_000 and view["step"] == 116
        assert max(_weights()) <= width * 5  # the bucketed runs, not 43,200 rows
        assert sum(_weights()) <= 40_000
    assert dash.cache_items() <= 40_000 and len(dash._CACHE) < len(vids)  # noqa: SLF001 - old views went first
    again = dash.heat_view(root, DAY.isoformat(), vids[-1], width)  # the newest is still cached: same object
    assert again is dash.heat_view(root, DAY.isoformat(), vids[-1], width)
    svg = charts.heat_strip(again["runs"], "heat", again["count"], again["step"])
    assert "max heat per 116 s" in svg and f"{again['count']:,} runs drawn as" in svg
    assert svg == charts.heat_strip(dash.heat_map(root, DAY.isoformat(), vids[-1]), "heat")  # as drawn from the runs
