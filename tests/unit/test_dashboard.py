"""The dashboard's numbers (video_analytics.dashboard), its SVG charts (video_analytics.charts) and its
data-root reads (include.dashboard)."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pyarrow as pa
import pytest

from include import dashboard as dash
from include.storage import DataRoot
from include.verify import build_report
from video_analytics import charts
from video_analytics import conventions as conv
from video_analytics import dashboard as core


def test_rate_handles_unknown_and_zero():
    assert core.rate(1, 4) == 0.25
    assert core.rate(3, 0) == 0.0
    assert core.rate(None, 4) is None and core.rate(1, None) is None


@pytest.mark.parametrize("values", [[0], [5, 5, 5], list(range(0, 1001)), [3, 7, 600, 601, 86399], [0.5, 2.5]])
def test_histogram_counts_every_value_once_in_round_bins(values):
    bins = core.histogram(values, bins=20)
    assert sum(b["count"] for b in bins) == len(values)
    assert bins[0]["lo"] == 0 and bins[-1]["hi"] >= max(values)
    assert all(a["hi"] == b["lo"] for a, b in zip(bins, bins[1:], strict=False))
    assert len(bins) <= 21
    for v in values:  # each value lies in the bin that counts it
        inside = [b for b in bins if b["lo"] <= v < b["hi"] or (b is bins[-1] and v == b["hi"])]
        assert inside, v


def test_histogram_bins_match_numpy_counts():
    rng = np.random.default_rng(3)
    values = rng.integers(0, 50_000, 10_000)
    bins = core.histogram(values, bins=20)
    edges = [b["lo"] for b in bins] + [bins[-1]["hi"]]
    assert [b["count"] for b in bins] == np.histogram(values, bins=edges)[0].tolist()
    step = bins[0]["hi"] - bins[0]["lo"]
    assert step == 2500  # 50,000 / 20, already round


def test_histogram_of_nothing_is_empty():
    assert core.histogram([]) == []


def test_top_n_orders_by_value_then_vid():
    rows = [{"vid": "b", "ClickNum": 2}, {"vid": "a", "ClickNum": 2}, {"vid": "c", "ClickNum": 9},
            {"vid": "d", "ClickNum": 1}]
    assert [r["vid"] for r in core.top_n(rows, "ClickNum", 3)] == ["c", "a", "b"]


def test_heat_runs_merge_equal_neighbours():
    rows = [(3, 5, 2), (1, 7, 4), (2, 5, 3), (5, 1, 1)]  # unsorted, a gap at segment 4
    assert core.heat_runs(rows) == [
        {"start": 0, "end": 2, "heat": 7, "plays": 4},
        {"start": 2, "end": 6, "heat": 5, "plays": 3},
        {"start": 8, "end": 10, "heat": 1, "plays": 1},
    ]
    assert core.heat_runs([]) == []


def test_day_summary_reads_rates_thresholds_and_outcome():
    day = dt.date(2014, 1, 7)
    rep = build_report(day, {
        "online_time": [{"name": "reject rate under threshold", "ok": True,
                         "detail": "2 rejects of 100 rows = 2.0000% (threshold 5.0000%)"}],
        "plays": [{"name": "quarantine_rate", "ok": False, "detail": {"threshold": 0.02, "rate": 0.5}}]})
    s = core.day_summary("2014-01-07", {"users": 3, "online_seconds": 60, "rows_in": 100, "rejects": 2},
                         {"ingested": 1, "unique": 2, "quarantined": 1}, rep)
    assert (s["users"], s["online_seconds"], s["plays"]) == (3, 60, 1)
    assert s["reject_rate"] == 0.02 and s["quarantine_rate"] == 0.5
    assert s["reject_threshold"] == pytest.approx(0.05) and s["quarantine_threshold"] == 0.02
    assert s["verify"] == "failed" and s["failed"] == ["plays.quarantine_rate"]
    empty = core.day_summary("2014-01-08", None, None, None)
    assert empty["verify"] == "none" and empty["users"] is None and empty["reject_rate"] is None
    assert empty["reject_threshold"] == conv.MAX_REJECT_RATE


def _values(svg: str, cls: str) -> list[str]:
    return re.findall(rf"class='{cls}'[^>]*data-value='([^']*)'", svg)


def test_charts_draw_one_mark_per_value_and_escape_text():
    svg = charts.line_chart(["01-05", "01-06"], [("users <x>", [3, None], str), ("h", [1.5, 2], str)], "t",
                            threshold=("thr", 0.5))
    assert svg.startswith("<svg") and "<x>" not in svg and "users &lt;x&gt;" in svg
    assert _values(svg, "point") == ["3", "1.5", "2"]
    assert "class='threshold'" in svg
    bars = charts.bar_chart([{"vid": "v1", "kid": "k", "ClickNum": 5}, {"vid": "v2", "kid": "k", "ClickNum": 2}],
                            "ClickNum", "top", str)
    assert _values(bars, "bar") == ["5", "2"]
    hist = charts.histogram(core.histogram([1, 2, 3]), "h", str)
    assert sum(int(v) for v in _values(hist, "bar")) == 3
    heat = charts.heat_strip(core.heat_runs([(1, 7, 4), (2, 5, 3)]), "heat")
    assert _values(heat, "run") == ["7", "5"]
    for svg in (charts.line_chart([], [], "x"), charts.bar_chart([], "k", "x", str), charts.histogram([], "x", str),
                charts.heat_strip([], "x")):
        assert "no " in svg


@pytest.fixture
def root(tmp_path):
    r = DataRoot(str(tmp_path))
    for d, users in ((dt.date(2014, 1, 6), [10, 20]), (dt.date(2014, 1, 7), [5, 7, 100])):
        r.write_table(pa.table({"userid": list(range(len(users))), "online_seconds": users,
                                "sessions": [1] * len(users)}), conv.online_time_path(d, "online_time.parquet"))
        r.write_json({"users": len(users), "online_seconds": sum(users), "rows_in": 50, "rejects": 1},
                     conv.online_time_path(d, "totals.json"))
    day = "20140107"
    r.write_json({"ingested": 3, "unique": 4, "quarantined": 1}, conv.plays_path(day, "ingest.json"))
    r.write_table(pa.table({"vid": ["a", "b", "c"], "uid": ["u"] * 3, "kid": ["k1", "nokid", "k2"],
                            "ClickNum": [1, 5, 3], "Traffic": [9.5, 1.0, 3.0]}), conv.plays_path(day, "contrib", "vid.parquet"))
    r.write_table(pa.table({"vid": ["a", "a", "b"], "seg": [1, 2, 1], "heat": [4, 4, 2], "plays": [2, 2, 1]}),
                  conv.plays_path(day, "segments.parquet"))
    r.write_json(build_report(dt.date(2014, 1, 7), {"plays": []}), conv.report_path(dt.date(2014, 1, 7)))
    return r


def test_adapter_reads_only_what_is_there(root):
    assert dash.days(root) == ["2014-01-06", "2014-01-07"]
    hist = dash.history(root, 1)
    assert [h["day"] for h in hist] == ["2014-01-07"]
    assert hist[0]["users"] == 3 and hist[0]["online_seconds"] == 112 and hist[0]["verify"] == "passed"
    assert hist[0]["quarantine_rate"] == 0.25 and hist[0]["reject_rate"] == 0.02
    assert dash.history(root)[0]["verify"] == "none" and dash.history(root)[0]["plays"] is None
    assert sorted(dash.online_seconds(root, "2014-01-07").tolist()) == [5, 7, 100]
    top = dash.top_videos(root, "2014-01-07", 2)
    assert [r["vid"] for r in top["by_plays"]] == ["b", "c"] and [r["vid"] for r in top["by_traffic"]] == ["a", "c"]
    assert top["count"] == 3 and top["by_plays"][0]["kid"] == "nokid"
    assert dash.heat_map(root, "2014-01-07", "a") == [{"start": 0, "end": 4, "heat": 4, "plays": 2}]
    assert dash.heat_map(root, "2014-01-07", "zz") == []
    assert dash.top_videos(root, "2014-01-06") is None and dash.online_seconds(root, "2014-01-08") is None


def test_adapter_sees_a_rewritten_day(root):
    assert dash.day_summary(root, "2014-01-07")["users"] == 3
    root.write_json({"users": 4, "online_seconds": 1, "rows_in": 50, "rejects": 1, "pad": "x" * 10},
                    conv.online_time_path(dt.date(2014, 1, 7), "totals.json"))
    assert dash.day_summary(root, "2014-01-07")["users"] == 4


def test_heat_strip_of_a_day_long_video_draws_one_bar_per_pixel_with_the_max_heat():
    runs = core.heat_runs((s, 1 + (s * 7919) % 1000, 1) for s in range(1, 43_201))  # 43,200 segments, 24 h
    assert len(runs) > 40_000
    svg = charts.heat_strip(runs, "heat <b>")
    width = charts.W - charts.PAD_L - charts.PAD_R
    bars = re.findall(r"class='bucket' data-start='(\d+)' data-end='(\d+)' data-value='(\d+)'", svg)
    assert 0 < len(bars) <= width and "class='run'" not in svg
    assert svg.count("<rect") <= 2 * width and len(svg) < 400_000
    assert "max heat per 116 s" in svg and "heat &lt;b&gt;" in svg
    for start, end, value in bars[:50] + bars[-50:]:  # each bar: the largest heat of the runs it covers
        inside = [r["heat"] for r in runs if r["start"] < int(end) and r["end"] > int(start)]
        assert int(value) == max(inside)
    assert int(bars[-1][1]) == runs[-1]["end"] == 86_400


def test_bucket_runs_keeps_few_runs_and_gaps():
    runs = [{"start": 0, "end": 2, "heat": 3, "plays": 1}, {"start": 10, "end": 12, "heat": 5, "plays": 1}]
    assert core.bucket_runs(runs, 10) == (runs, None)
    many = [{"start": 2 * i, "end": 2 * i + 2, "heat": i % 3} for i in range(100)] + [
        {"start": 1000, "end": 1002, "heat": 9}]
    buckets, step = core.bucket_runs(many, 10)
    assert step == 101 and len(buckets) <= 10
    # two buckets of max 2 merged, no bar in the gap (buckets 2..8), the last bucket ends at the timeline's end
    assert buckets == [{"start": 0, "end": 202, "heat": 2}, {"start": 909, "end": 1002, "heat": 9}]


def test_every_chart_draws_a_bounded_number_of_marks():
    n = 5_000
    labels = [f"d{i}" for i in range(n)]
    line = charts.line_chart(labels, [("u", list(range(n)), str)], "t", threshold=("thr", 1))
    points = _values(line, "point")
    assert len(points) <= charts.MAX_POINTS and points[-1] == str(n - 1) and "u (max of 13)" in line
    bins = [{"lo": i, "hi": i + 1, "count": 1} for i in range(1_000)]
    hist = charts.histogram(bins, "h", str)
    assert len(_values(hist, "bar")) <= charts.MAX_BINS and sum(int(v) for v in _values(hist, "bar")) == 1_000
    bars = charts.bar_chart([{"vid": str(i), "kid": "k", "ClickNum": i} for i in range(1_000)], "ClickNum", "b", str)
    assert len(_values(bars, "bar")) == charts.MAX_BARS


def test_top_videos_of_many_rows_keeps_n_in_top_n_order(tmp_path):
    r = DataRoot(str(tmp_path))
    rng = np.random.default_rng(5)
    n = 50_000
    clicks = rng.integers(0, 50, n)
    traffic = rng.uniform(0, 10, n).round(1)
    vids = [f"v{i:06d}" for i in rng.permutation(n)]
    rows = {"vid": vids, "uid": ["u"] * n, "kid": ["k"] * n, "ClickNum": clicks, "Traffic": traffic}
    table = pa.table(rows).set_column(4, "Traffic", pa.array([None] + traffic[1:].tolist()))
    r.write_table(table, conv.plays_path("20140107", "contrib", "vid.parquet"))
    top = dash.top_videos(r, "2014-01-07", 100)
    plain = table.select(["vid", "kid", "ClickNum", "Traffic"]).to_pylist()
    assert top["count"] == n
    assert top["by_plays"] == core.top_n(plain, "ClickNum", 100)
    assert top["by_traffic"] == core.top_n(plain, "Traffic", 100)


# ---- issue 26: calendar gaps, last complete day, reasons, retention curve, CSV, category names ----------

def test_calendar_keeps_days_without_results_as_gaps():
    found = ["2014-01-02", "2014-01-05"]
    assert core.calendar(found, dt.date(2026, 1, 1), 5) == [f"2014-01-0{i}" for i in range(1, 6)]
    # recent data: the axis ends today, so days since the newest result show as gaps (stale is visible)
    assert core.calendar(["2026-01-01"], dt.date(2026, 1, 3), 3) == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert core.calendar([], dt.date(2026, 1, 3), 3) == [] and core.calendar(found, dt.date(2026, 1, 3), 0) == []


def test_line_chart_breaks_the_line_at_a_gap():
    svg = charts.line_chart(["a", "b", "c", "d", "e"], [("v", [1, 2, None, 3, 4], str)], "t")
    assert svg.count("<polyline") == 2 and _values(svg, "point") == ["1", "2", "3", "4"]
    share = charts.line_chart(["a", "b"], [("v", [1.0, 0.5], str)], "t", top=1.0)
    assert re.findall(r"<text x='[^']*' y='[^']*' text-anchor='end' fill='#555'>([^<]*)<", share)[-1] == "1.0"
    lone = charts.line_chart(["a", "b", "c"], [("v", [1, None, 3], str)], "t")
    assert lone.count("<polyline") == 0 and _values(lone, "point") == ["1", "3"]


def test_last_complete_day_and_hours_since_it_ended():
    rows = [{"day": "2014-01-05", "verify": "passed"}, {"day": "2014-01-06", "verify": "failed"},
            {"day": "2014-01-07", "verify": "none"}]
    got = core.last_complete(rows, dt.datetime(2014, 1, 8, 6, 30, tzinfo=dt.UTC))
    assert got == {"day": "2014-01-05", "hours": 54.5}
    assert core.last_complete(rows[1:], dt.datetime(2014, 1, 8, tzinfo=dt.UTC)) is None


def test_retention_curve_is_the_share_of_plays_reaching_each_second():
    curve = core.retention_curve([(1, 10), (2, 8), (4, 2)], 10)
    assert [(p["second"], p["plays"], p["share"]) for p in curve] == [(0, 10, 1.0), (2, 8, 0.8), (4, 0, 0.0),
                                                                       (6, 2, 0.2)]
    assert core.retention_curve([], 10) == [] and core.retention_curve([(1, 1)], 0) == []


def test_reason_counts_most_frequent_first():
    assert core.reason_counts({"b": 2, "a": 2, "c": 5}, 100) == [
        {"reason": "c", "count": 5, "share": 0.05}, {"reason": "a", "count": 2, "share": 0.02},
        {"reason": "b", "count": 2, "share": 0.02}]


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_csv_cells_cannot_be_formulas(text):
    import csv
    import io

    out = core.csv_text(["h"], [[text], [-3], [1.5], [None], ["ok, \"quoted\"\nline"]])
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[1] == ["'" + text] and rows[2:5] == [["-3"], ["1.5"], [""]]
    assert rows[5] == ["ok, \"quoted\"\nline"]


def test_adapter_reasons_from_files_then_from_the_ingest_report(root):
    d = dt.date(2014, 1, 7)
    root.write_table(pa.table({"file": ["f"] * 3, "line": [1, 2, 3], "reason": ["bad date", "bad time", "bad date"],
                               "raw": ["x"] * 3}), conv.online_time_path(d, "rejects.parquet"))
    root.write_table(pa.table({"key": ["k"], "reason": ["bad_vid"]}), conv.plays_path("20140107", "quarantine.parquet"))
    got = dash.reasons(root, "2014-01-07")
    assert got["rejects"] == [{"reason": "bad date", "count": 2, "share": 0.04},
                              {"reason": "bad time", "count": 1, "share": 0.02}]
    assert got["quarantine"] == [{"reason": "bad_vid", "count": 1, "share": 0.25}]
    root.remove(conv.plays_path("20140107", "quarantine.parquet"))  # pruned: the ingest report still counts them
    root.write_json({"ingested": 3, "unique": 4, "quarantined": 1, "quarantine_reasons": {"missing_S": 1}},
                    conv.plays_path("20140107", "ingest.json"))
    got = dash.reasons(root, "2014-01-07")
    assert got["quarantine"][0]["reason"] == "missing_S" and got["quarantine_source"] == "ingest.json"
    assert dash.reasons(root, "2014-01-06") == {"rejects": None, "quarantine": None,
                                                "quarantine_source": "quarantine.parquet"}


def test_adapter_retention_curve_and_timeline(root):
    assert [p["share"] for p in dash.retention_curve(root, "2014-01-07", "a")] == [2.0, 2.0]  # 2 plays of ClickNum 1
    assert dash.retention_curve(root, "2014-01-07", "zz") == []
    rows = dash.timeline(root, 4, dt.date(2030, 1, 1))
    assert [(r["day"], r["missing"]) for r in rows] == [("2014-01-04", True), ("2014-01-05", True),
                                                        ("2014-01-06", False), ("2014-01-07", False)]
    assert rows[0]["users"] is None and rows[2]["users"] == 2
    assert dash.last_complete(root, dt.datetime(2014, 1, 8, 3, tzinfo=dt.UTC)) == {"day": "2014-01-07", "hours": 3.0}


def test_adapter_category_names_are_bounded_text(root):
    assert dash.category_names(root) == {}
    root.write_json({"names": {"k1": "Music", "5": 7}}, dash.CATEGORIES)
    assert dash.category_names(root) == {"k1": "Music", "5": "7"}
    root.write_json({"names": ["not", "a", "map"]}, dash.CATEGORIES)
    assert dash.category_names(root) == {}
