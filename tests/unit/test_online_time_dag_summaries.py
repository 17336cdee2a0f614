"""Issue 25 in the DAG: the shard group (sort_and_partition -> compute_shard -> merge_report) from per-day
summaries, each log parsed once, with exactly the full path's results, reports and documents."""

from __future__ import annotations

import datetime as dt
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from include import tasks
from include.online_time.compute_shard import compute_shard
from include.online_time.merge_report import merge_report
from include.online_time.sort_and_partition import sort_and_partition
from include.online_time.summaries import SUMMARY_DIR
from include.online_time.verify import verify_online_time
from include.storage import DataRoot
from tests.support.online_oracle import oracle_for_dir
from tests.unit.test_online_time_windows import END, HEADER, as_dict, day, edge_cases, write_logs
from video_analytics import conventions as conv
from video_analytics import online_time as core

RULES = {"min_gap": 3, "timeout": 600, "post_multiplier": 3}


@pytest.fixture
def logs(tmp_path) -> Path:
    write_logs(tmp_path / "logs", edge_cases())
    return tmp_path / "logs"


def shard_group(root: DataRoot, logs: Path, end: date, window_days: int, shards: int, summaries: bool,
                mongo_db=None) -> tuple[dict, dict]:
    """The three stages as the DAG runs them: ``(partition, totals)``."""
    part = sort_and_partition(root, str(logs), end, window_days, shards=shards, max_reject_rate=1.0,
                              summaries=core.Rules() if summaries else None)
    results = [compute_shard(root, s, end, window_days, RULES) for s in part["shards"]]
    return part, merge_report(root, end, results, mongo_db=mongo_db)


def outputs(root: DataRoot, end: date) -> tuple[pa.Table, pa.Table]:
    return (root.read_table(conv.online_time_path(end, "online_time.parquet")),
            root.read_table(conv.online_time_path(end, "rejects.parquet")))


def ctx(end: date, **params) -> dict:
    p = {"window_days": 7, "windows": [1, 7], "lookback_days": 1, "shards": 3, "max_reject_rate": 0.5, **RULES}
    return {"logical_date": dt.datetime(end.year, end.month, end.day, tzinfo=dt.UTC), "params": {**p, **params}}


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(("window_days", "shards"), [(1, 2), (7, 1), (7, 8), (30, 3)])
def test_summaries_shards_equal_the_full_path_and_the_oracle(logs, tmp_path, mongo, monkeypatch, window_days,
                                                             shards, fast):
    from video_analytics import day_summary as ds

    monkeypatch.setattr(ds, "HAVE_FAST", ds.HAVE_FAST and fast)
    full, summ = DataRoot(str(tmp_path / "full")), DataRoot(str(tmp_path / "summ"))
    dbs = {"full": mongo, "summ": mongo.client["video_summaries"]}
    fpart, ftot = shard_group(full, logs, END, window_days, shards, False, dbs["full"])
    spart, stot = shard_group(summ, logs, END, window_days, shards, True, dbs["summ"])
    assert "mode" not in fpart and spart["mode"] == "summaries"
    assert [s["mode"] for s in spart["shards"]] == ["summaries"] * shards and not summ.exists(conv.shard_path(END, 0))
    assert len(spart["days_parsed"]) == window_days + 1 and spart["days_reused"] == []
    want, rows_in, rejects = oracle_for_dir(logs, END, window_days)
    f_out, s_out = outputs(full, END), outputs(summ, END)
    assert s_out[0].equals(f_out[0]) and s_out[1].equals(f_out[1]) and as_dict(s_out[0]) == want
    keys = ("users", "online_seconds", "sessions", "rows_in", "rows_parsed", "rejects", "shards",
            "distinct_users_in_window", "published")
    assert {k: stot[k] for k in keys} == {k: ftot[k] for k in keys}
    assert (stot["rows_in"], stot["rejects"]) == (rows_in, rejects)
    docs = [sorted(({k: v for k, v in d.items() if k != "run"} for d in dbs[n]["online_time"].find()),
                   key=lambda d: d["_id"]) for n in ("full", "summ")]
    assert docs[0] == docs[1] and len(docs[0]) == len(want)
    assert all(c["ok"] for c in verify_online_time(summ, END, 1.0))


def test_edge_cases_hold_across_midnight_lookback_posts_and_zero_seconds(logs, tmp_path):
    """The edge-case users of the 7-day window, by hand (the oracle agrees above)."""
    root = DataRoot(str(tmp_path / "root"))
    shard_group(root, logs, END, 7, 4, True)
    got = as_dict(outputs(root, END)[0])
    assert got[2] == (300, 1)  # 300 s across midnight, then a timeout
    assert got[4] == (0, 0)  # a user with 0 seconds has a row
    assert got[1] == (90 * 3, 1)  # the post was in the lookback day: the in-window 90 s count 3 times
    assert got[3] == (8 * 3, 1)  # gaps under 3 s add nothing, the session goes on, marked
    assert got[5] == (10, 1)  # a login at 00:00:20 closes the carried session (0 s: no session)


def test_a_time_outside_its_day_falls_back_to_the_full_path(logs, tmp_path):
    f = logs / f"{day(1).isoformat()}.log"
    f.write_text(f.read_text() + f"{END.isoformat()} 00:00:05 2 post\n")  # a later day's time in day 1's file
    root = DataRoot(str(tmp_path / "root"))
    part, _ = shard_group(root, logs, END, 7, 3, True)
    assert "mode" not in part and all(root.exists(s["path"]) for s in part["shards"])
    want, _, _ = oracle_for_dir(logs, END, 7)
    assert as_dict(outputs(root, END)[0]) == want
    full = DataRoot(str(tmp_path / "full"))
    shard_group(full, logs, END, 7, 3, False)
    assert outputs(root, END)[0].equals(outputs(full, END)[0])
    assert all(c["ok"] for c in verify_online_time(root, END, 1.0))


def test_the_dag_parses_each_day_once_and_a_warm_day_only_itself(logs, tmp_path, monkeypatch):
    root = tmp_path / "dagroot"
    monkeypatch.setenv("AIRFLOW_VAR_DATA_ROOT", str(root))
    monkeypatch.setenv("AIRFLOW_VAR_LOG_DIR", str(logs))
    nxt = END + timedelta(days=1)
    write_logs(logs, {nxt: [f"{nxt.isoformat()} 00:02:00 2 get", f"{nxt.isoformat()} 08:00:00 12 login",
                            f"{nxt.isoformat()} 08:05:00 12 logout"]})
    for end in (END, nxt):
        c = ctx(end)
        shards = tasks.sort_and_partition(c)
        assert [s["index"] for s in shards] == [0, 1, 2] and all(s["mode"] == "summaries" for s in shards)
        merge_report(DataRoot(str(root)), end, [tasks.compute_shard(c, s) for s in shards])
        part = DataRoot(str(root)).read_json(conv.online_time_path(end, "partition.json"))
        windows = tasks.online_windows(c)
        assert windows["w1"]["days_parsed"] == windows["w7"]["days_parsed"] == []  # sort_and_partition did
        want, _, _ = oracle_for_dir(logs, end, 7)
        assert as_dict(outputs(DataRoot(str(root)), end)[0]) == want
    assert part["days_parsed"] == [nxt.isoformat()] and len(part["days_reused"]) == 7


def test_verify_checks_each_shard_against_the_summaries(logs, tmp_path):
    root = DataRoot(str(tmp_path / "root"))
    part, _ = shard_group(root, logs, END, 7, 3, True)
    name = "shard results == their day summaries"
    assert [c["ok"] for c in verify_online_time(root, END, 1.0) if c["name"] == name] == [True]
    rel = conv.result_path(END, 1)
    t = root.read_table(rel)
    more = pa.table({"online_seconds": pa.array([s + 1 for s in t.column("online_seconds").to_pylist()])})
    root.write_table(t.set_column(1, "online_seconds", more.column(0)), rel)  # a wrong total, same users
    checks = {c["name"]: c for c in verify_online_time(root, END, 1.0)}
    assert not checks[name]["ok"] and "shard 1:" in checks[name]["detail"]
    assert checks["users out == users with an in-window event"]["ok"]  # the user counts alone cannot see it


def test_verify_names_a_missing_summary_and_counts_that_differ(logs, tmp_path):
    root = DataRoot(str(tmp_path / "root"))
    part, _ = shard_group(root, logs, END, 7, 2, True)
    part["rows_parsed"] += 1
    root.write_json(part, conv.online_time_path(END, "partition.json"))
    checks = {c["name"]: c for c in verify_online_time(root, END, 1.0)}
    assert not checks["shard results == their day summaries"]["ok"]
    assert "rows_parsed" in checks["shard results == their day summaries"]["detail"]
    (gone,) = root.glob(f"{SUMMARY_DIR}/{day(3).isoformat()}-*.arrow")
    Path(gone).unlink()
    checks = {c["name"]: c for c in verify_online_time(root, END, 1.0)}
    assert not checks["every shard has a result"]["ok"] and day(3).isoformat() in checks["every shard has a result"]["detail"]


def test_a_summary_gone_before_its_shard_runs_is_named(logs, tmp_path):
    root = DataRoot(str(tmp_path / "root"))
    part = sort_and_partition(root, str(logs), END, 7, shards=2, max_reject_rate=1.0, summaries=core.Rules())
    (gone,) = root.glob(f"{SUMMARY_DIR}/{day(2).isoformat()}-*.arrow")
    Path(gone).unlink()
    with pytest.raises(FileNotFoundError, match=f"day summary .*{day(2).isoformat()}.*clear online_time.sort_and"):
        compute_shard(root, part["shards"][0], END, 7, RULES)


def test_rejects_over_the_threshold_still_fail_in_summaries_mode(logs, tmp_path):
    from include.errors import RejectThresholdExceeded

    root = DataRoot(str(tmp_path / "root"))
    with pytest.raises(RejectThresholdExceeded):
        sort_and_partition(root, str(logs), END, 7, shards=2, max_reject_rate=0.0, summaries=core.Rules())
    assert root.read_table(conv.online_time_path(END, "rejects.parquet")).num_rows == 3


def test_an_empty_window_makes_empty_shards(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    for k in range(8):
        (logs / f"{day(k).isoformat()}.log").write_text(HEADER if k % 2 else "")
    root = DataRoot(str(tmp_path / "root"))
    part, totals = shard_group(root, logs, END, 7, 2, True)
    assert part["mode"] == "summaries" and totals["users"] == totals["rows_in"] == 0  # a header is no row
    assert all(c["ok"] for c in verify_online_time(root, END, 1.0))


def test_an_accepted_missing_day_is_named_and_left_out_as_on_the_full_path(logs, tmp_path):
    from include.online_time.logs import accept_missing

    (logs / f"{day(2).isoformat()}.log").unlink()
    roots = {n: DataRoot(str(tmp_path / n)) for n in ("full", "summ")}
    for n, root in roots.items():
        accept_missing(root, day(2), "disk lost", "ops")
        part, totals = shard_group(root, logs, END, 7, 3, n == "summ")
        assert [m["day"] for m in totals["missing_days"]] == [day(2).isoformat()]
    assert outputs(roots["summ"], END)[0].equals(outputs(roots["full"], END)[0])
    assert part["mode"] == "summaries" and len(part["days"]) == 7
    assert all(c["ok"] for c in verify_online_time(roots["summ"], END, 1.0))
