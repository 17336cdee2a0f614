"""CONTRACT §1, every log read once: day summaries on the data root, windows side by side, the CLI."""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from include.cli import main as cli_main
from include.online_time.logs import accept_missing
from include.online_time.summaries import SUMMARY_DIR, SummaryCache, load_or_parse
from include.online_time.windows import run_windows, window_path
from include.sample_logs import generate_logs
from include.storage import DataRoot
from tests.support.online_oracle import oracle_for_dir
from video_analytics import online_time as core

END = date(2014, 2, 10)
HEADER = "logtime userid action\n"


def day(k: int) -> date:
    return END - timedelta(days=k)


def edge_cases() -> dict[date, list[str]]:
    """Lines per day: sessions and timeouts across midnight, a post in a lookback day, short gaps, a login
    closing a carried session, a 0-second user, rejected rows."""
    d = {day(k): [] for k in range(31)}

    def ev(k, hms, uid, action):
        d[day(k)].append(f"{day(k).isoformat()} {hms} {uid} {action}")

    ev(7, "23:59:00", 1, "login"), ev(7, "23:59:30", 1, "post"), ev(6, "00:01:00", 1, "get")  # lookback post (w7)
    ev(1, "23:58:00", 2, "login"), ev(0, "00:03:00", 2, "get"), ev(0, "00:13:01", 2, "get")  # 180 s, then timeout
    ev(1, "23:59:59", 3, "login"), ev(0, "00:00:01", 3, "get"), ev(0, "00:00:02", 3, "post")  # short gaps, marked
    ev(0, "00:00:10", 3, "logout")
    ev(0, "10:00:00", 4, "get")  # 0 seconds, a row all the same
    ev(1, "23:59:50", 5, "login"), ev(0, "00:00:20", 5, "login"), ev(0, "00:00:30", 5, "get")  # login closes
    ev(30, "23:50:00", 6, "login"), ev(29, "00:05:00", 6, "get")  # across the first midnight of the month
    for k in range(29, -1, -1):  # one session kept alive across a month of midnights
        ev(k, "00:00:00", 7, "login" if k == 29 else "get")
        ev(k, "00:09:00", 7, "get")
        ev(k, "23:59:00", 8, "login"), ev(k, "23:59:50", 8, "get")
    d[day(2)] += ["2014-02-08 25:00:00 9 get", "garbage", "2014-02-08 10:00:00 x login"]
    return d


def write_logs(log_dir: Path, days: dict[date, list[str]]) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    for dd, lines in days.items():
        (log_dir / f"{dd.isoformat()}.log").write_text(HEADER + "".join(ln + "\n" for ln in lines))


def as_dict(table) -> dict[int, tuple[int, int]]:
    return {r["userid"]: (r["online_seconds"], r["sessions"]) for r in table.to_pylist()}


@pytest.fixture
def logs(tmp_path) -> Path:
    write_logs(tmp_path / "logs", edge_cases())
    return tmp_path / "logs"


@pytest.fixture
def root(tmp_path) -> DataRoot:
    return DataRoot(str(tmp_path / "root"))


def test_windows_1_7_30_equal_the_oracle_on_edge_cases(logs, root):
    totals = run_windows(root, str(logs), END, (1, 7, 30), max_reject_rate=1.0)
    assert sorted(totals) == [1, 7, 30]
    wants = {}
    for w in (1, 7, 30):
        want, rows_in, rejects = wants[w] = oracle_for_dir(logs, END, w)
        got = as_dict(root.read_table(window_path(END, w, "online_time.parquet")))
        assert got == want, w
        t = root.read_json(window_path(END, w, "totals.json"))
        assert (t["users"], t["rows_in"], t["rejects"], t["mode"]) == (len(want), rows_in, rejects, "summaries")
    w7, w30 = wants[7][0], wants[30][0]  # the edge cases are in there
    assert w7[1] == (3 * 90, 1) and w30[1] == (3 * 120, 1) and w7[4] == (0, 0) and w30[7][1] == 1
    assert len(totals[1]["days_parsed"]) == 2 and len(totals[30]["days_parsed"]) == 31  # this run read them


def test_each_day_is_parsed_once_and_a_changed_file_alone_again(logs, root):
    run_windows(root, str(logs), END, (7,), max_reject_rate=1.0)
    again = run_windows(root, str(logs), END, (1, 7, 30), max_reject_rate=1.0)
    assert again[7]["days_parsed"] == [] and len(again[7]["days_reused"]) == 8
    assert again[30]["days_parsed"] == [day(k).isoformat() for k in range(30, 7, -1)]
    f = logs / f"{day(3).isoformat()}.log"
    f.write_text(f.read_text() + f"{day(3).isoformat()} 12:00:00 42 login\n{day(3).isoformat()} 12:01:00 42 get\n")
    changed = run_windows(root, str(logs), END, (1, 7, 30), max_reject_rate=1.0)
    assert changed[7]["days_parsed"] == changed[30]["days_parsed"] == [day(3).isoformat()]
    assert changed[1]["days_parsed"] == []
    want, _, _ = oracle_for_dir(logs, END, 30)
    assert as_dict(root.read_table(window_path(END, 30, "online_time.parquet"))) == want and want[42] == (60, 1)
    assert len(root.glob(f"{SUMMARY_DIR}/{day(3).isoformat()}-*.arrow")) == 1  # the old version is gone


def test_a_same_size_rewrite_with_a_new_mtime_is_read_again(logs, root):
    run_windows(root, str(logs), END, (1,), max_reject_rate=1.0)
    f = logs / f"{END.isoformat()}.log"
    text = f.read_text().replace("4 get", "4 post")
    f.write_text(text)
    os.utime(f, ns=(1, 2))
    assert run_windows(root, str(logs), END, (1,), max_reject_rate=1.0)[1]["days_parsed"] == [END.isoformat()]


def test_rejects_are_kept_with_the_summary_and_reported_when_reused(logs, root):
    first = run_windows(root, str(logs), END, (7,), max_reject_rate=1.0)[7]
    second = run_windows(root, str(logs), END, (7,), max_reject_rate=1.0)[7]
    assert first["rejects"] == second["rejects"] == 3 and second["days_parsed"] == []
    rej = root.read_table(window_path(END, 7, "rejects.parquet")).to_pylist()
    assert len(rej) == 3
    assert {Path(r["file"]).name for r in rej} == {f"{day(2).isoformat()}.log"}
    assert {r["reason"] for r in rej} == {"bad time", "too few fields", "bad userid"}


def test_a_time_outside_its_day_makes_the_window_run_the_full_computation(logs, root):
    f = logs / f"{day(1).isoformat()}.log"
    f.write_text(f.read_text() + f"{END.isoformat()} 00:00:05 2 post\n")  # a later day's time in day 1's file
    totals = run_windows(root, str(logs), END, (1, 7), max_reject_rate=1.0)
    assert totals[7]["mode"] == "full" and totals[1]["mode"] == "full"
    for w in (1, 7):
        want, _, _ = oracle_for_dir(logs, END, w)
        assert as_dict(root.read_table(window_path(END, w, "online_time.parquet"))) == want


def test_a_user_going_back_in_time_inside_a_day_is_sorted_and_still_summarised(logs, root):
    f = logs / f"{day(1).isoformat()}.log"
    d1 = day(1).isoformat()
    f.write_text(f.read_text() + f"{d1} 12:10:00 11 get\n{d1} 12:00:00 11 login\n{d1} 12:20:00 11 logout\n")
    totals = run_windows(root, str(logs), END, (7,), max_reject_rate=1.0)
    want, _, _ = oracle_for_dir(logs, END, 7)
    assert totals[7]["mode"] == "summaries" and want[11] == (600 + 600, 1)
    assert as_dict(root.read_table(window_path(END, 7, "online_time.parquet"))) == want


def test_an_accepted_missing_day_has_an_empty_summary_and_is_named(logs, root):
    (logs / f"{day(2).isoformat()}.log").unlink()
    accept_missing(root, day(2), "disk lost", "ops")
    t = run_windows(root, str(logs), END, (1, 7), max_reject_rate=1.0)
    assert [m["day"] for m in t[7]["missing_days"]] == [day(2).isoformat()] and t[1]["missing_days"] == []
    want, _, _ = oracle_for_dir(logs, END, 7)
    assert as_dict(root.read_table(window_path(END, 7, "online_time.parquet"))) == want


def test_a_rerun_of_one_window_leaves_the_others(logs, root):
    run_windows(root, str(logs), END, (1, 7), max_reject_rate=1.0)
    before = root.read_bytes(window_path(END, 7, "totals.json"))
    run_windows(root, str(logs), END, (1,), max_reject_rate=1.0)
    assert root.read_bytes(window_path(END, 7, "totals.json")) == before
    assert root.read_json(window_path(END, 1, "totals.json"))["window_days"] == 1


def test_an_unreadable_summary_is_parsed_again(logs, root):
    path = str(logs / f"{END.isoformat()}.log")
    s = load_or_parse(root, path, END, core.Rules(), 1 << 20)
    (rel,) = root.glob(f"{SUMMARY_DIR}/{END.isoformat()}-*.arrow")
    Path(rel).write_bytes(b"not arrow")
    again = load_or_parse(root, path, END, core.Rules(), 1 << 20)
    assert again.parsed and again.meta["users"] == s.meta["users"]


def test_other_rules_have_their_own_summaries(logs, root):
    path = str(logs / f"{END.isoformat()}.log")
    SummaryCache(root, core.Rules()).get(path, END)
    assert SummaryCache(root, core.Rules(min_gap=0)).get(path, END).parsed


def test_a_run_with_other_rules_keeps_the_default_rules_summaries(logs, root):
    """A run with other rules (a run's conf) neither removes nor replaces the default rules' summaries; a
    changed file replaces only its own rules' earlier version."""
    path = logs / f"{END.isoformat()}.log"
    SummaryCache(root, core.Rules()).get(str(path), END)
    SummaryCache(root, core.Rules(min_gap=0)).get(str(path), END)
    assert len(root.glob(f"{SUMMARY_DIR}/{END.isoformat()}-*.arrow")) == 2
    assert not SummaryCache(root, core.Rules()).get(str(path), END).parsed
    path.write_text(path.read_text() + f"{END.isoformat()} 12:00:00 42 login\n")
    assert SummaryCache(root, core.Rules()).get(str(path), END).parsed
    assert len(root.glob(f"{SUMMARY_DIR}/{END.isoformat()}-*.arrow")) == 2  # default's old version replaced
    assert SummaryCache(root, core.Rules(min_gap=0)).get(str(path), END).parsed


def test_cli_keeps_and_reuses_summaries_and_prints_json(tmp_path, capfd):
    def cli(*args) -> tuple[int, str]:
        capfd.readouterr()
        code = cli_main(list(args))
        return code, capfd.readouterr().out

    logs = tmp_path / "logs"
    generate_logs(str(logs), END, days=8, users=200, seed=3)
    base = ["online-time", "--log-dir", str(logs), "--end", END.isoformat(), "--window", "7"]
    code, out = cli(*base, "--out", str(tmp_path / "plain.parquet"), "--json")
    assert code == 0
    plain = json.loads(out)
    assert len(plain["days_parsed"]) == 8 and plain["days_reused"] == [] and plain["mode"] == "full"
    root = str(tmp_path / "root")
    code, out = cli(*base, "--data-root", root, "--json", "--out", str(tmp_path / "a.parquet"))
    first = json.loads(out)
    code2, out2 = cli(*base, "--data-root", root, "--json", "--out", str(tmp_path / "b.csv"))
    second = json.loads(out2)
    assert code == code2 == 0
    assert len(first["days_parsed"]) == 8 and first["days_reused"] == []
    assert second["days_parsed"] == [] and len(second["days_reused"]) == 8
    keys = ("users", "online_seconds", "sessions", "rows_in", "rejects")
    assert [first[k] for k in keys] == [second[k] for k in keys] == [plain[k] for k in keys]
    want, _, _ = oracle_for_dir(logs, END, 7)
    assert as_dict(pq.read_table(tmp_path / "a.parquet")) == want == as_dict(pq.read_table(tmp_path / "plain.parquet"))
    code, out = cli(*base[:-2], "--window", "1", "--data-root", root, "--json", "--out", str(tmp_path / "c.parquet"))
    assert json.loads(out)["days_parsed"] == [] and (Path(root) / "online_time" / END.isoformat() / "w1").is_dir()



def test_the_dag_task_writes_each_window_and_skips_one_without_its_logs(logs, tmp_path, monkeypatch):
    import datetime as dt

    from include import tasks

    root = tmp_path / "dagroot"
    monkeypatch.setenv("AIRFLOW_VAR_DATA_ROOT", str(root))
    monkeypatch.setenv("AIRFLOW_VAR_LOG_DIR", str(logs))
    (logs / f"{day(20).isoformat()}.log").unlink()  # the 30-day window cannot run yet
    params = {"windows": [1, 7, 30], "lookback_days": 1, "max_reject_rate": 0.5, "min_gap": 3, "timeout": 600,
              "post_multiplier": 3}
    ctx = {"logical_date": dt.datetime(END.year, END.month, END.day, tzinfo=dt.UTC), "params": params}
    out = tasks.online_windows(ctx)
    assert out["w1"]["days_parsed"] == [day(1).isoformat(), END.isoformat()] and "skipped" not in out["w7"]
    assert "2014-01-21.log" in out["w30"]["skipped"]
    run = root / "online_time" / END.isoformat()
    assert (run / "w1" / "totals.json").exists() and (run / "w7" / "totals.json").exists()
    assert json.loads((run / "w30" / "skipped.json").read_text())["window_days"] == 30
    assert tasks.online_windows(ctx)["w7"]["days_reused"] and not tasks.online_windows(ctx)["w7"]["days_parsed"]


@pytest.mark.parametrize("fast", [True, False])
def test_empty_files_and_either_summariser_give_the_oracle(logs, root, monkeypatch, fast):
    from video_analytics import day_summary as ds

    monkeypatch.setattr(ds, "HAVE_FAST", ds.HAVE_FAST and fast)
    (logs / f"{day(3).isoformat()}.log").write_text("")
    (logs / f"{day(4).isoformat()}.log").write_text(HEADER)
    totals = run_windows(root, str(logs), END, (7, 30), max_reject_rate=1.0)
    for w in (7, 30):
        want, rows_in, _ = oracle_for_dir(logs, END, w)
        assert as_dict(root.read_table(window_path(END, w, "online_time.parquet"))) == want
        assert totals[w]["rows_in"] == rows_in and totals[w]["mode"] == "summaries"


def test_a_summary_without_its_columns_is_parsed_again(logs, root):
    import pyarrow as pa

    path = str(logs / f"{END.isoformat()}.log")
    s = load_or_parse(root, path, END, core.Rules())
    (rel,) = root.glob(f"{SUMMARY_DIR}/{END.isoformat()}-*.arrow")
    table = pa.table({"userid": pa.array([1], pa.int64())}).replace_schema_metadata({"summary": "{}"})
    with pa.OSFile(rel, "wb") as fh, pa.ipc.new_file(fh, table.schema) as w:
        w.write_table(table)
    again = load_or_parse(root, path, END, core.Rules())
    assert again.parsed and again.meta["users"] == s.meta["users"]
