"""The retention policy (``video_analytics.retention``) and ``video-analytics prune`` on a local data root."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from include import prune as pr
from include.storage import DataRoot
from video_analytics import conventions as conv
from video_analytics import retention as ret

UTC = dt.UTC
D1, D2 = dt.date(2014, 1, 6), dt.date(2014, 1, 7)
T0 = dt.datetime(2014, 1, 8, 1, tzinfo=UTC)


def _day(day, **kw):
    base = {"report_ok": True, "report_at": T0, "cleaned": True,
            "shards": ((f"online_time/{day}/shards/shard-0.arrow", T0 - dt.timedelta(hours=1)),),
            "snapshot": f"plays/{conv.ymd(day)}/snapshot", "quarantine": f"plays/{conv.ymd(day)}/quarantine.parquet"}
    return ret.Day(day, **{**base, **kw})


def _kinds(plan):
    return sorted((r.day, r.kind) for r in plan)


def test_defaults_shards_go_once_verified_snapshot_and_quarantine_after_90_days():
    assert ret.Policy() == ret.Policy(0, 90, 90)
    assert _kinds(ret.plan([_day(D1), _day(D2)], dt.date(2014, 1, 8))) == [
        ("2014-01-06", "shards"), ("2014-01-07", "shards")]
    late = D1 + dt.timedelta(days=91)
    assert _kinds(ret.plan([_day(D1)], late)) == [("2014-01-06", k) for k in ("quarantine", "shards", "snapshot")]
    assert _kinds(ret.plan([_day(D1)], late - dt.timedelta(days=1))) == [("2014-01-06", "shards")]


def test_nothing_of_an_unverified_today_or_uncleaned_day_goes():
    late = D1 + dt.timedelta(days=200)
    assert ret.plan([_day(D1, report_ok=False)], late) == []
    assert ret.plan([_day(D1)], D1) == [] and ret.plan([_day(D1)], D1 - dt.timedelta(days=3)) == []
    # no cleanup yet: T_endlist_D still holds the plays, but the snapshot is kept all the same
    assert _kinds(ret.plan([_day(D1, cleaned=False)], late)) == [("2014-01-06", "quarantine"), ("2014-01-06", "shards")]


def test_shards_newer_than_the_report_or_of_unknown_age_are_kept():
    """A re-run that wrote new shards (not yet verified), or a filesystem without modification times."""
    newer = ((f"online_time/{D1}/shards/shard-0.arrow", T0 - dt.timedelta(hours=1)),
             (f"online_time/{D1}/shards/shard-1.arrow", T0 + dt.timedelta(seconds=1)))
    assert ret.plan([_day(D1, shards=newer)], D2 + dt.timedelta(days=2)) == []
    unknown = ((f"online_time/{D1}/shards/shard-0.arrow", None),)
    assert ret.plan([_day(D1, shards=unknown)], D2 + dt.timedelta(days=2)) == []
    assert ret.plan([_day(D1)], D1 + dt.timedelta(days=5), ret.Policy(shard_days=5)) == []


@pytest.mark.parametrize("name,value", [
    ("snapshot_days", -1), ("snapshot_days", 0), ("shard_days", -5), ("quarantine_days", 10**9),
    ("snapshot_days", "nan"), ("snapshot_days", float("nan")), ("snapshot_days", float("inf")),
    ("snapshot_days", "1e3"), ("snapshot_days", "ninety"), ("snapshot_days", ""), ("snapshot_days", " "),
    ("snapshot_days", "-3"), ("snapshot_days", "٣"), ("snapshot_days", 2.5), ("snapshot_days", True),
    ("snapshot_days", None), ("snapshot_days", "9" * 5000), ("snapshot_days", [90]),
])
def test_hostile_settings_fail_in_one_line(name, value):
    with pytest.raises(ret.PolicyError) as e:
        ret.Policy(**{name: value})
    msg = str(e.value)
    assert "\n" not in msg and len(msg) < 200 and name in msg


def test_settings_from_text():
    assert ret.Policy("2", " 30 ", 7.0) == ret.Policy(2, 30, 7)
    assert pr.policy_from({"snapshot_days": None, "shard_days": 1},
                          {"retention_snapshot_days": "45"}.get) == ret.Policy(1, 45, 90)


# ---- include.prune on a local data root -----------------------------------------------------------------

def _write_day(root: DataRoot, day: dt.date, ok=True, report_at=None, cleaned=True, shards=2):
    d = conv.ymd(day)
    for i in range(shards):
        root.write_bytes(b"x" * 100, conv.shard_path(day, i))
    root.write_bytes(b"r", conv.result_path(day, 0))
    root.write_json({"shards": []}, conv.online_time_path(day, "partition.json"))
    root.write_bytes(b"rej", conv.online_time_path(day, "rejects.parquet"))
    for rel in ("snapshot/plays_raw.parquet", "snapshot/endlist.parquet", "quarantine.parquet", "plays.parquet",
                "contrib/vid.parquet", "rollup.json", "ingest.json"):
        root.write_bytes(b"p", conv.plays_path(d, rel))
    if cleaned:
        root.write_json({}, conv.plays_path(d, "cleanup.json"))
    at = report_at or dt.datetime.now(UTC) + dt.timedelta(seconds=1)
    root.write_json({"day": day.isoformat(), "ok": ok, "written_at": at.isoformat()}, conv.report_path(day))


def _files(root: DataRoot) -> set[str]:
    return {pr._rel(root, p) for p in root.fs.find(root.path())}


def test_prune_removes_what_the_policy_says_and_records_it(tmp_path):
    root = DataRoot(str(tmp_path / "root"))
    _write_day(root, D1)
    _write_day(root, D2, ok=False)
    before = _files(root)
    today = D1 + dt.timedelta(days=100)

    dry = pr.prune(root, ret.Policy(), today=today, dry_run=True)
    assert _files(root) == before
    assert sorted((r["kind"], r["path"]) for r in dry["removed"]) == [
        ("quarantine", "plays/20140106/quarantine.parquet"), ("shards", "online_time/2014-01-06/shards/shard-0.arrow"),
        ("shards", "online_time/2014-01-06/shards/shard-1.arrow"), ("snapshot", "plays/20140106/snapshot")]
    assert dry["bytes"] == 200 + 1 + 2 and dry["dry_run"] is True

    done = pr.prune(root, ret.Policy(), today=today)
    assert done["removed"] == [{**r} for r in dry["removed"]]
    gone = before - _files(root)
    assert gone == {"online_time/2014-01-06/shards/shard-0.arrow", "online_time/2014-01-06/shards/shard-1.arrow",
                    "plays/20140106/snapshot/plays_raw.parquet", "plays/20140106/snapshot/endlist.parquet",
                    "plays/20140106/quarantine.parquet"}
    # kept: results, rejects, reports, contributions; the unverified day entirely
    assert {"online_time/2014-01-06/results/part-0.parquet", "online_time/2014-01-06/rejects.parquet",
            "reports/2014-01-06.json", "plays/20140106/contrib/vid.parquet"} <= _files(root)
    assert all(p in _files(root) for p in before if "20140107" in p or "2014-01-07" in p)
    mark = root.read_json("plays/20140106/pruned.json")
    assert mark["snapshot"]["paths"] == ["plays/20140106/snapshot"] and mark["snapshot"]["policy"]["snapshot_days"] == 90
    assert root.read_json("online_time/2014-01-06/pruned.json")["shards"]["paths"][0].endswith("shard-0.arrow")
    assert pr.prune(root, ret.Policy(), today=today)["removed"] == []


def test_a_re_run_of_a_pruned_day_is_refused_in_one_line(tmp_path):
    root = DataRoot(str(tmp_path / "root"))
    _write_day(root, D1)
    pr.refuse_pruned(root, "20140106")  # nothing pruned yet
    pr.prune(root, ret.Policy(snapshot_days=1, quarantine_days=1), today=D1 + dt.timedelta(days=2))
    with pytest.raises(pr.DayPruned) as e:
        pr.refuse_pruned(root, "20140106")
    assert "\n" not in str(e.value) and "20140106 cannot be re-run" in str(e.value)
    # only the shards went: the day can be re-run
    _write_day(root, D2)
    pr.prune(root, ret.Policy(), today=D2 + dt.timedelta(days=2))
    pr.refuse_pruned(root, "20140107")


def test_a_re_run_in_progress_keeps_its_new_shards(tmp_path):
    root = DataRoot(str(tmp_path / "root"))
    _write_day(root, D1, report_at=dt.datetime(2014, 1, 7, tzinfo=UTC))  # shards written after the report
    assert pr.prune(root, ret.Policy(), today=D1 + dt.timedelta(days=2))["removed"] == []


def test_unreadable_reports_and_stray_folders_are_left_alone(tmp_path):
    root = DataRoot(str(tmp_path / "root"))
    _write_day(root, D1)
    root.write_bytes(b"{not json", "reports", "2014-01-05.json")
    root.write_bytes(b"x", "reports", "notes.json")
    root.write_json({"ok": True, "written_at": "yesterday"}, "reports", "2014-01-04.json")
    root.write_bytes(b"x", "online_time", "scratch", "shards", "shard-0.arrow")
    out = pr.prune(root, ret.Policy(), today=D1 + dt.timedelta(days=2))
    assert {r["day"] for r in out["removed"]} == {"2014-01-06"}
    assert root.exists("online_time", "scratch", "shards", "shard-0.arrow")


def _cli(capfd, *argv):
    from include.cli import main

    code = main(list(argv))
    out, err = capfd.readouterr()
    return code, out, err


def test_cli_prune_dry_run_then_prune(tmp_path, capfd):
    root = DataRoot(str(tmp_path / "root"))
    old = dt.datetime.now(UTC).date() - dt.timedelta(days=120)
    _write_day(root, old)
    code, out, _ = _cli(capfd, "prune", "--data-root", root.url, "--dry-run")
    assert code == 0 and {r["kind"] for r in json.loads(out)["removed"]} == {"shards", "snapshot", "quarantine"}
    assert root.exists(conv.plays_path(conv.ymd(old), "snapshot"))
    code, out, _ = _cli(capfd, "prune", "--data-root", root.url, "--snapshot-days", "200", "--quarantine-days", "200")
    assert code == 0 and {r["kind"] for r in json.loads(out)["removed"]} == {"shards"}
    assert root.exists(conv.plays_path(conv.ymd(old), "snapshot")) and not root.exists(conv.shard_path(old, 0))


@pytest.mark.parametrize("opt,value", [("--snapshot-days", "-1"), ("--snapshot-days", "nan"),
                                       ("--quarantine-days", "99999999"), ("--shard-days", "abc")])
def test_cli_prune_refuses_hostile_numbers_in_one_line(tmp_path, capfd, opt, value):
    root = DataRoot(str(tmp_path / "root"))
    _write_day(root, dt.date(2014, 1, 6))
    before = _files(root)
    code, out, err = _cli(capfd, "prune", "--data-root", root.url, f"{opt}={value}")
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and err.startswith("video-analytics prune: error: retention ")
    assert _files(root) == before


def test_maintenance_task_takes_params_then_variables(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    root = DataRoot(str(tmp_path / "root"))
    _write_day(root, D1)
    monkeypatch.setenv("AIRFLOW_VAR_DATA_ROOT", root.url)
    ctx = {"params": {"shard_days": None, "snapshot_days": None, "quarantine_days": None, "dry_run": True},
           "data_interval_end": dt.datetime(2014, 6, 1, tzinfo=UTC)}
    monkeypatch.setenv("AIRFLOW_VAR_RETENTION_SNAPSHOT_DAYS", "NaN")
    with pytest.raises(AirflowFailException, match="retention snapshot_days must be"):
        pr.maintenance(ctx)
    monkeypatch.setenv("AIRFLOW_VAR_RETENTION_SNAPSHOT_DAYS", "365")
    out = pr.maintenance(ctx)
    assert out["by_kind"] == {"shards": 2, "quarantine": 1} and out["policy"]["snapshot_days"] == 365
    assert root.exists(conv.shard_path(D1, 0))  # dry run
    ctx["params"].update(dry_run=False, snapshot_days=30)
    assert pr.maintenance(ctx)["by_kind"] == {"shards": 2, "snapshot": 1, "quarantine": 1}
    assert not root.exists(conv.plays_path("20140106", "snapshot"))


def test_the_dag_and_the_cli_refuse_a_pruned_day_before_any_connection(tmp_path, monkeypatch, capfd):
    from airflow.sdk.exceptions import AirflowFailException

    from include import tasks

    root = DataRoot(str(tmp_path / "root"))
    _write_day(root, D1)
    pr.prune(root, ret.Policy(snapshot_days=1), today=D1 + dt.timedelta(days=5))
    capfd.readouterr()
    monkeypatch.setenv("AIRFLOW_VAR_DATA_ROOT", root.url)
    monkeypatch.setenv("AIRFLOW_CONN_VIDEO_REDIS", "redis://127.0.0.1:1/0")  # never reached
    ctx = {"params": {}, "logical_date": dt.datetime(2014, 1, 6, tzinfo=UTC)}
    for fn in (tasks.wait_for_plays, tasks.ingest_plays):
        with pytest.raises(AirflowFailException, match="20140106 cannot be re-run from the data root"):
            fn(ctx)
    code, out, err = _cli(capfd, "plays", "--date", "20140106", "--data-root", root.url)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("video-analytics plays: error: 20140106 cannot be re-run from the data root")
