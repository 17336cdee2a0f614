"""The legacy job's stat documents read back as running-totals rows (video_analytics.legacy_stat)."""

from __future__ import annotations

import pandas as pd
import pytest

from video_analytics import legacy_stat as legacy
from video_analytics import totals as tot

VID = {"_id": "1000001", "Traffic": 3, "EngageSum": 1.5, "Load": 10.0, "Play": 3, "IP": 2, "PlayID": 3,
       "Geo": {"b": {"ClickNum": 1, "Traffic": 1.0, "EngageSum": 0.5, "Load": 4}, "a": {"ClickNum": 2}},
       "HeatMapSum": {"10": 1, "2": 3, "1": 3}, "PlayMapSum": {"10": 1, "2": 2, "1": 3}, "Htmap": "x", "Title": "t"}


def test_a_vid_document_becomes_sorted_rows_with_missing_totals_zero():
    kind, (row, regions, segs) = legacy.stat_rows("1000", VID)
    assert kind == "vid"
    assert row == ("1000001", "1000", 3.0, 1.5, 10, 3, 2, 3) and type(row[2]) is float and type(row[4]) is int
    assert regions == [("a", 2, 0.0, 0.0, 0), ("b", 1, 1.0, 0.5, 4)]
    assert segs == [(1, 3, 3), (2, 3, 2), (10, 1, 1)]  # by segment number, not by text
    assert legacy.stat_rows("1000", {"_id": "1000002"})[1] == (("1000002", "1000", 0.0, 0.0, 0, 0, 0, 0), [], [])


def test_a_uid_document_keeps_its_mtraffic_and_its_geo_load_must_be_zero():
    doc = {"_id": "1000", "Traffic": 5.0, "Play": 2, "Mtraffic": 2.5, "Geo": {"x": {"ClickNum": 1, "Load": 0}}}
    assert legacy.stat_rows("1000", doc) == ("uid", (("1000", 5.0, 0.0, 0, 2, 0), [("x", 1, 0.0, 0.0)], 2.5))
    assert legacy.stat_rows("1000", {"_id": "1000"})[1][2] is None
    with pytest.raises(legacy.Malformed, match=r"field Geo.x.Load: 3: a uid's Geo Load is always 0"):
        legacy.stat_rows("1000", {"_id": "1000", "Geo": {"x": {"Load": 3}}})


@pytest.mark.parametrize(("doc", "field"), [
    ({"$set": {"a": 1}}, "$set"),
    ({"Geo": {"x": {"$inc": 1}}}, "Geo.x.$inc"),
    ({"Geo": {"a.b": {}}}, "Geo.a.b"),
    ({"Geo": {"": {}}}, "Geo."),
    ({"Traffic": float("nan")}, "Traffic"),
    ({"Geo": {"x": {"Traffic": float("inf")}}}, "Geo.x.Traffic"),
    ({"Title": [1.0, float("-inf")]}, "Title.1"),
    ({"Load": "3"}, "Load"),
    ({"Play": 1.5}, "Play"),
    ({"IP": True}, "IP"),
    ({"Traffic": None}, "Traffic"),
    ({"Geo": "x"}, "Geo"),
    ({"HeatMapSum": {"0": 1}, "PlayMapSum": {"0": 1}}, "HeatMapSum.0"),
    ({"HeatMapSum": {"007": 1}, "PlayMapSum": {"007": 1}}, "HeatMapSum.007"),
    ({"HeatMapSum": {"1": 1}, "PlayMapSum": {"x": 1}}, "PlayMapSum.x"),
    ({"HeatMapSum": {"1": 1, "2": 1}, "PlayMapSum": {"1": 1}}, "PlayMapSum.2"),
    ({"HeatMapSum": {"1": "1"}, "PlayMapSum": {"1": 1}}, "HeatMapSum.1"),
])
def test_malformed_documents_name_the_field(doc, field):
    with pytest.raises(legacy.Malformed) as info:
        legacy.stat_rows("1000", {"_id": "1000001", **doc})
    assert info.value.field == field and str(info.value).startswith(f"field {field}: ")


@pytest.mark.parametrize("_id", ["2000001", "100000", "10000011", 1000001, None])
def test_an_id_that_is_neither_the_uid_nor_its_vid_is_refused(_id):
    with pytest.raises(legacy.Malformed, match="field _id: .* is neither the uid '1000' nor one of its vids"):
        legacy.stat_rows("1000", {"_id": _id})


def test_vdaily_ids_are_days():
    assert legacy.vdaily_day("20140131") == "20140131"
    for bad in ("20140132", "2014013", "2014-01-31", 20140131):
        with pytest.raises(legacy.Malformed, match="field _id: "):
            legacy.vdaily_day(bad)


def test_a_video_without_segments_has_no_heat_maps_as_in_the_legacy_job():
    state = tot.empty_state()
    state["vid"] = pd.DataFrame({"vid": ["1000001"], "uid": ["1000"], "Traffic": [1.0], "EngageSum": [0.5],
                                 "Load": [2], "Play": [1], "IP": [1], "PlayID": [4]})
    [(_uid, _vid, doc)] = tot.vid_stat_docs(state)
    assert "HeatMapSum" not in doc and "PlayMapSum" not in doc and doc["Htmap"] == doc["Ptmap"] == "[]"
