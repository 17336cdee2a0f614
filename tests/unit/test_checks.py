"""Verification arithmetic (video_analytics.checks) without any files or services."""

from __future__ import annotations

import math

import pandas as pd

from video_analytics import checks
from video_analytics.plays import close, diff


def _plays(n=3, flow=10.0):
    return pd.DataFrame({"key": [f"k{i}" for i in range(n)], "vid": ["1000001"] * n,
                         "playid": list(range(1, n + 1)), "flow": [flow] * n})


def _vdaily(clicks, traffic):
    return [{"doc": {"1000001": {"Traffic": traffic, "Geo": {"R": {"ClickNum": clicks}}}}}]


def _day(**kw):
    args = dict(unique=4, plays=_plays(), quarantine=pd.DataFrame({"key": ["q"], "reason": ["bad_vid"]}),
                duplicates=1, contrib_vid=pd.DataFrame({"ClickNum": [3], "Traffic": [30.0]}),
                vdaily=_vdaily(3, 30.0), max_quarantine_rate=0.5, quarantine_uri="q.parquet")
    args.update(kw)
    return {c["name"]: c for c in checks.plays_day_checks(**args)}


def test_a_consistent_day_passes():
    got = _day()
    assert all(c["ok"] for c in got.values()), got
    assert got["quarantine_rate"]["detail"]["reasons"] == {"bad_vid": 1}


def test_each_day_check_can_fail():
    assert not _day(unique=5)["plays_accounted"]["ok"]
    p = _plays()
    p.loc[2, "playid"] = 1
    assert not _day(plays=p)["play_ids_unique"]["ok"]
    assert not _day(vdaily=_vdaily(2, 30.0))["clicknum_equals_plays"]["ok"]
    assert not _day(vdaily=_vdaily(3, 31.0))["traffic_equals_flow"]["ok"]
    assert not _day(max_quarantine_rate=0.1)["quarantine_rate"]["ok"]


def test_non_finite_totals_fail():
    inf = _day(plays=_plays(flow=math.inf), contrib_vid=pd.DataFrame({"ClickNum": [3], "Traffic": [math.inf]}),
               vdaily=_vdaily(3, math.inf))
    assert not inf["traffic_equals_flow"]["ok"]
    assert not checks.rel_ok(math.inf, math.inf) and not checks.rel_ok(math.nan, math.nan)
    assert checks.rel_ok(1.0, 1.0 + 1e-12)


def test_contribution_matches_plays():
    plays = pd.DataFrame({"vid": ["a", "a", "b"], "flow": [1.5, 2.0, 3.0], "comprate": [0.5, 0.25, 1.0],
                          "playid": [1, 2, 7]})
    contrib = pd.DataFrame({"vid": ["a", "b"], "ClickNum": [2, 1], "Traffic": [3.5, 3.0],
                            "EngageSum": [0.75, 1.0], "PlayID": [2, 7], "IP": [1, 1]})
    assert checks.contribution_matches_plays(contrib, plays)
    for col, val in (("Traffic", 3.6), ("ClickNum", 3), ("PlayID", 3), ("EngageSum", 0.7)):
        bad = contrib.copy()
        bad.loc[0, col] = val
        assert not checks.contribution_matches_plays(bad, plays), col
    assert not checks.contribution_matches_plays(contrib.iloc[:1], plays)



def test_documents_match_reports_differences():
    exp = {"a": {"x": 1.0}, "b": {"x": 2}}
    assert checks.documents_match(exp, {"a": {"x": 1.0 + 1e-12}, "b": {"x": 2}}, close, diff) == []
    bad = checks.documents_match(exp, {"a": {"x": 1.5}}, close, diff)
    assert len(bad) == 2 and bad[1] == "b: missing"


def test_online_time_checks():
    base = dict(shards=2, missing_shards=[], missing_parts=[], rows_in=10, parsed=9, rejects=1, users_out=4,
                users_unique=True, parts_users=4, users_expected=4, result_uri="r", max_reject_rate=0.2)
    assert all(c["ok"] for c in checks.online_time_checks(**base))
    for change in ({"missing_parts": ["p"]}, {"parsed": 8}, {"users_out": 3}, {"users_unique": False},
                   {"users_out": None}, {"max_reject_rate": 0.05}):
        assert not all(c["ok"] for c in checks.online_time_checks(**{**base, **change})), change
