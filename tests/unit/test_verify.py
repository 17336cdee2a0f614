"""The verify report: combining sections, failing, and writing the report either way."""

import datetime as dt

import pytest

from include.storage import DataRoot
from include.verify import VerificationFailed, build_report, summary, verify_day
from video_analytics.conventions import report_path

DAY = dt.date(2014, 1, 7)


def test_build_report_lists_failed_checks():
    rep = build_report(DAY, {"a": [{"name": "x", "ok": True, "detail": "1"}],
                             "b": [{"name": "y", "ok": False, "detail": "2"}]})
    assert rep["ok"] is False and rep["failed"] == ["b.y"]
    assert "[FAIL] b.y: 2" in summary(rep) and "FAILED" in summary(rep).splitlines()[0]


def test_build_report_ok_when_all_pass():
    rep = build_report(DAY, {"a": [{"name": "x", "ok": True, "detail": ""}]})
    assert rep["ok"] is True and rep["failed"] == []


def test_missing_results_fail_verification_and_still_write_the_report(tmp_path):
    root = DataRoot(str(tmp_path))
    with pytest.raises(VerificationFailed) as err:
        verify_day(root, DAY)
    assert "online_time." in str(err.value) and "plays." in str(err.value)
    rep = root.read_json(report_path(DAY))
    assert rep["ok"] is False and rep["day"] == "2014-01-07"
    assert {c["name"] for c in rep["checks"]["plays"]} == {"results_readable"}
