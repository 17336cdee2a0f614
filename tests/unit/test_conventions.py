"""The conventions module: day formats, key names and data-root paths in one place."""

from __future__ import annotations

import datetime as dt

import pytest

from video_analytics import conventions as conv

DAY = dt.date(2014, 1, 7)


def test_day_formats_round_trip():
    assert conv.ymd(DAY) == "20140107"
    assert conv.parse_ymd("20140107") == DAY
    assert conv.as_date("20140107") == conv.as_date("2014-01-07") == conv.as_date(DAY) == DAY
    for bad in ("2014017", "2014-01-07", "20141301", "abcdefgh"):
        with pytest.raises(ValueError):
            conv.parse_ymd(bad)


def test_redis_keys():
    assert conv.endlist_key("20140107") == "T_endlist_20140107"
    assert conv.table_key("load", "20140107") == "T_loadtable_20140107"
    assert conv.table_key("region", "20140107") == "T_regiontable_20140107"
    assert set(conv.TABLE_KEYS) == {"load", "play", "region"}


def test_paths():
    assert conv.plays_path("20140107", "snapshot", "endlist.parquet") == "plays/20140107/snapshot/endlist.parquet"
    assert conv.online_time_path(DAY) == "online_time/2014-01-07"
    assert conv.shard_path(DAY, 3) == "online_time/2014-01-07/shards/shard-3.arrow"
    assert conv.result_path(DAY, 3) == "online_time/2014-01-07/results/part-3.parquet"
    assert conv.report_path(DAY) == "reports/2014-01-07.json"
    assert conv.log_file_name(DAY) == "2014-01-07.log"
    # a path component never makes folders
    assert conv.alert_path("d/x", "manual__a/b", "t-try1.json") == "alerts/d_x/manual__a_b/t-try1.json"


def test_rule_defaults_are_the_contracts():
    assert (conv.WINDOW_DAYS, conv.LOOKBACK_DAYS, conv.SHARDS) == (7, 1, 8)
    assert (conv.MIN_GAP, conv.TIMEOUT, conv.POST_MULTIPLIER) == (3, 600, 3)
    assert conv.MAX_REJECT_RATE == conv.MAX_QUARANTINE_RATE == 0.01


def test_auto_shards_one_per_target_bytes_between_1_and_max():
    mib = 2**20
    assert conv.SHARD_TARGET_BYTES == 256 * mib
    assert conv.auto_shards(0) == conv.auto_shards(1) == 1
    assert conv.auto_shards(256 * mib) == 1 and conv.auto_shards(256 * mib + 1) == 2
    assert conv.auto_shards(337 * mib, 4) == 2  # the 10M-event week
    assert conv.auto_shards(10**12, 4) == 4 and conv.auto_shards(10**12) == conv.SHARDS
    assert conv.auto_shards(100, 8, target_bytes=10) == 8
    with pytest.raises(ValueError):
        conv.auto_shards(1, 0)
