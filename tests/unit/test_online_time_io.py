"""CONTRACT §1 on files: window check, shards, report, publishing, verification."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import mongomock
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.online_time.compute_shard import compute_shard, read_shard
from include.online_time.merge_report import merge_report
from include.online_time.sort_and_partition import RejectThresholdExceeded, check_window, sort_and_partition
from include.online_time.verify import verify_online_time
from include.sample_logs import generate_logs
from include.storage import DataRoot
from tests.support.online_oracle import oracle_for_dir

END = date(2014, 1, 11)
HEADER = "logtime userid action\n"


def write_days(log_dir: Path, days: dict[date, str], header: bool = True) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    for d, text in days.items():
        (log_dir / f"{d.isoformat()}.log").write_text((HEADER if header else "") + text)


def full_week(log_dir: Path, extra: dict[date, str] | None = None, lookback: bool = True) -> None:
    days = {END - timedelta(days=k): "" for k in range(7 + lookback)}
    days.update(extra or {})
    write_days(log_dir, days)


def run_all(root: DataRoot, log_dir: Path, shards: int = 4, mongo_db=None, **kw) -> tuple[dict, dict]:
    part = sort_and_partition(root, str(log_dir), END, shards=shards, **kw)
    results = [compute_shard(root, s, END) for s in part["shards"]]
    return part, merge_report(root, END, results, mongo_db=mongo_db)


def result_dict(root: DataRoot) -> dict[int, tuple[int, int]]:
    t = root.read_table(f"online_time/{END}/online_time.parquet").to_pylist()
    return {r["userid"]: (r["online_seconds"], r["sessions"]) for r in t}


@pytest.fixture
def root(tmp_path) -> DataRoot:
    return DataRoot(str(tmp_path / "root"))


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("logs")
    generate_logs(str(d), END, days=8, users=300, seed=11)
    return d


# --- window ----------------------------------------------------------------------------------

def test_check_window_names_every_missing_window_file(tmp_path):
    full_week(tmp_path)
    (tmp_path / "2014-01-07.log").unlink()
    (tmp_path / "2014-01-11.log").unlink()
    with pytest.raises(FileNotFoundError) as exc:
        check_window(str(tmp_path), END)
    assert "2014-01-07.log" in str(exc.value) and "2014-01-11.log" in str(exc.value)
    assert "2014-01-08.log" not in str(exc.value)


def test_check_window_skips_a_missing_lookback_file(tmp_path, caplog):
    full_week(tmp_path, lookback=False)
    files = check_window(str(tmp_path), END)
    assert [Path(f).name for f in files] == [f"2014-01-{d:02d}.log" for d in range(5, 12)]
    assert "2014-01-04.log" in caplog.text
    full_week(tmp_path)
    assert Path(check_window(str(tmp_path), END, window_days=2, lookback_days=2)[0]).name == "2014-01-08.log"


# --- whole pipeline on hand-made logs ---------------------------------------------------------

def test_pipeline_hand_made_week(tmp_path, root):
    full_week(tmp_path / "logs", {
        date(2014, 1, 4): "2014-01-04 23:58:00 1 login\n2014-01-04 23:59:00 1 post\n2014-01-04 10:00:00 9 login\n",
        date(2014, 1, 5): "2014-01-05 00:01:00   1\tget\n\n2014-01-05 00:00:05 2 LOGIN\n"
                          "2014-01-05 00:00:15 2 Get\nbad line here\n",
        date(2014, 1, 11): "2014-01-11 23:59:00 3 login\n2014-01-11 23:59:30 3 logout\n2014-01-11 23:59:40 4 get\n",
    })
    part, totals = run_all(root, tmp_path / "logs", max_reject_rate=0.2)
    assert result_dict(root) == {1: (360, 1), 2: (10, 1), 3: (30, 1), 4: (0, 0)}
    assert part["rows_in"] == 10 and part["rows_parsed"] == 9 and part["rejects"] == 1
    assert totals["distinct_users_in_window"] == 4
    assert totals["users"] == 4 and totals["online_seconds"] == 400 and totals["sessions"] == 3
    rej = root.read_table(part["rejects_path"]).to_pylist()
    assert rej == [{"file": str(tmp_path / "logs" / "2014-01-05.log"), "line": 6, "reason": "too few fields",
                    "raw": "bad line here"}]
    checks = verify_online_time(root, END, max_reject_rate=0.2)
    assert all(c["ok"] for c in checks), checks


def test_ties_are_ordered_by_file_date_then_line(tmp_path, root):
    full_week(tmp_path / "a", {
        date(2014, 1, 5): "2014-01-06 00:00:05 1 login\n2014-01-05 10:00:00 2 login\n2014-01-05 10:00:00 2 post\n"
                          "2014-01-05 10:00:10 2 get\n",
        date(2014, 1, 6): "2014-01-06 00:00:05 1 post\n2014-01-06 00:00:10 1 get\n",
    })
    run_all(root, tmp_path / "a")
    assert result_dict(root) == {1: (15, 1), 2: (30, 1)}
    full_week(tmp_path / "b", {
        date(2014, 1, 5): "2014-01-06 00:00:05 1 post\n2014-01-05 10:00:00 2 post\n2014-01-05 10:00:00 2 login\n"
                          "2014-01-05 10:00:10 2 get\n",
        date(2014, 1, 6): "2014-01-06 00:00:05 1 login\n2014-01-06 00:00:10 1 get\n",
    })
    run_all(root, tmp_path / "b")
    assert result_dict(root) == {1: (5, 1), 2: (10, 1)}


def test_blocks_split_anywhere_give_the_same_result(sample, root, tmp_path):
    part, totals = run_all(root, sample)
    small = DataRoot(str(tmp_path / "small"))
    part2, totals2 = run_all(small, sample, block_bytes=97)
    assert result_dict(root) == result_dict(small)
    assert root.read_table(part["rejects_path"]).equals(small.read_table(part2["rejects_path"]))
    for k in ("rows_in", "rows_parsed", "rejects"):
        assert part[k] == part2[k]
    assert totals["distinct_users_in_window"] == totals2["distinct_users_in_window"]


def test_generated_week_matches_the_oracle_and_one_shard_equals_eight(sample, tmp_path):
    want, rows_in, rejects = oracle_for_dir(sample, END)
    got = {}
    for shards in (1, 8):
        root = DataRoot(str(tmp_path / f"s{shards}"))
        part, totals = run_all(root, sample, shards=shards)
        assert len(part["shards"]) == shards
        assert (part["rows_in"], part["rejects"]) == (rows_in, rejects)
        got[shards] = root.read_table(f"online_time/{END}/online_time.parquet")
        assert result_dict(root) == want
        assert totals["users"] == len(want) == totals["distinct_users_in_window"]
    assert got[1].equals(got[8])
    assert got[1].column("userid").to_pylist() == sorted(want)


def test_shards_are_in_file_order_and_partitioned_by_user(sample, root):
    from video_analytics import online_time as core

    part, _ = run_all(root, sample, shards=3)
    files = sorted(sample.glob("*.log"))
    events = [p for f in files for p in [core.parse_block(f.read_bytes(), 0, True)]]
    uid = np.concatenate([p.userid for p in events])
    lt = np.concatenate([p.logtime for p in events])
    act = np.concatenate([p.action for p in events])
    shard = core.shard_of(uid, 3)
    for s in part["shards"]:
        t = read_shard(root, s["path"])
        assert t.num_rows == s["rows"] > 0
        mine = shard == s["index"]  # the shard's users, every event of theirs, in file order
        assert t.column("userid").to_numpy().tolist() == uid[mine].tolist()
        assert t.column("logtime").cast(pa.int64()).to_numpy().tolist() == lt[mine].tolist()
        assert t.column("action").to_numpy().tolist() == act[mine].tolist()


def test_shards_none_chooses_the_count_from_the_window_size(sample, root, monkeypatch):
    from include.online_time.sort_and_partition import window_bytes
    from video_analytics import conventions as conv

    size = window_bytes(check_window(str(sample), END))
    assert size == sum(f.stat().st_size for f in sample.glob("*.log"))
    run_all(root, sample, shards=4)
    want = result_dict(root)
    part, _ = run_all(root, sample, shards=None)  # far below 256 MiB: one shard
    assert len(part["shards"]) == 1 and result_dict(root) == want
    monkeypatch.setattr(conv, "SHARD_TARGET_BYTES", size // 3 + 1)  # one shard per target, at most max_shards
    assert len(run_all(root, sample, shards=None)[0]["shards"]) == 3 and result_dict(root) == want
    assert len(run_all(root, sample, shards=None, max_shards=2)[0]["shards"]) == 2 and result_dict(root) == want


def test_rerun_overwrites_and_leaves_no_stale_files(sample, root):
    run_all(root, sample, shards=6)
    part, _ = run_all(root, sample, shards=2)
    names = sorted(Path(p).name for p in root.glob(f"online_time/{END}/*/*"))
    assert names == ["part-0.parquet", "part-1.parquet", "shard-0.arrow", "shard-1.arrow"]
    assert all(c["ok"] for c in verify_online_time(root, END))


def test_reject_threshold(tmp_path, root):
    full_week(tmp_path / "logs", {date(2014, 1, 6): "2014-01-06 10:00:00 1 login\n2014-01-06 10:00:00 1 jump\n"})
    with pytest.raises(RejectThresholdExceeded) as exc:
        sort_and_partition(root, str(tmp_path / "logs"), END)
    msg = str(exc.value)
    assert "1 rejected" in msg and "50.0000%" in msg and "1.0000%" in msg and "rejects.parquet" in msg
    assert root.read_table(f"online_time/{END}/rejects.parquet").num_rows == 1
    assert sort_and_partition(root, str(tmp_path / "logs"), END, max_reject_rate=0.5)["rejects"] == 1


# --- publishing ------------------------------------------------------------------------------

@pytest.fixture
def mongo(monkeypatch):
    """A mongomock database whose ``bulk_write`` accepts pymongo 4.x ``UpdateOne`` objects
    (mongomock 4.3 chokes on their ``sort`` argument)."""

    class Result:
        def __init__(self, upserted: int, matched: int):
            self.upserted_count, self.matched_count = upserted, matched

    def bulk_write(self, requests, ordered=True, **_):
        assert ordered is False
        upserted = matched = 0
        for op in requests:
            r = self.update_one(op._filter, op._doc, upsert=op._upsert)
            upserted += r.upserted_id is not None
            matched += r.matched_count
        return Result(upserted, matched)

    monkeypatch.setattr(mongomock.collection.Collection, "bulk_write", bulk_write)
    return mongomock.MongoClient().db


def test_publish_to_mongo_is_idempotent_and_drops_gone_users(sample, root, tmp_path, mongo):
    db = mongo
    part, totals = run_all(root, sample, mongo_db=db)
    coll = db["online_time"]
    want = result_dict(root)
    assert totals["published"] == len(want) == coll.count_documents({})
    doc = coll.find_one({"userid": next(iter(want))})
    u = doc["userid"]
    assert doc["_id"] == f"{u}_20140111" and doc["window_end"] == "2014-01-11" and doc["window_days"] == 7
    assert (doc["online_seconds"], doc["sessions"]) == want[u]
    run_all(root, sample, mongo_db=db)
    assert coll.count_documents({}) == len(want)
    # a smaller week: users that vanished are removed
    full_week(tmp_path / "tiny", {date(2014, 1, 6): "2014-01-06 10:00:00 1 login\n2014-01-06 10:00:09 1 get\n"})
    sort_and_partition(root, str(tmp_path / "tiny"), END)
    run_all(root, tmp_path / "tiny", mongo_db=db)
    assert list(coll.find({}, {"run": 0})) == [{"_id": "1_20140111", "userid": 1, "window_end": "2014-01-11",
                                                 "window_days": 7, "online_seconds": 9, "sessions": 1}]


def test_each_window_publishes_its_own_documents(mongo):
    from include.online_time.merge_report import publish

    t = pa.table({"userid": pa.array([1, 2], pa.int64()), "online_seconds": pa.array([5, 6], pa.int64()),
                  "sessions": pa.array([1, 1], pa.int64())})
    publish(mongo, t, END, 7)
    publish(mongo, t.slice(0, 1), END, 1)
    publish(mongo, t.slice(0, 1), END, 1)  # a re-run of window 1 leaves window 7's documents
    docs = {d["_id"]: d["window_days"] for d in mongo["online_time"].find()}
    assert docs == {"1_20140111": 7, "2_20140111": 7, "1_20140111_w1": 1}


# --- verification ----------------------------------------------------------------------------

def failed(root: DataRoot, **kw) -> set[str]:
    return {c["name"] for c in verify_online_time(root, END, **kw) if not c["ok"]}


def test_verify_passes_then_fails_on_a_missing_part(sample, root):
    run_all(root, sample)
    assert failed(root) == set()
    root.remove(f"online_time/{END}/results/part-2.parquet")
    assert failed(root) == {"every shard has a result", "users out == users with an in-window event"}


def test_verify_fails_on_row_count_mismatch_and_missing_users(sample, root):
    run_all(root, sample)
    part = root.read_json(f"online_time/{END}", "partition.json")
    part["rows_in"] += 1
    root.write_json(part, f"online_time/{END}", "partition.json")
    assert failed(root) == {"rows_in == rows_parsed + rejects"}
    t = root.read_table(f"online_time/{END}/online_time.parquet")
    root.write_table(t.slice(1), f"online_time/{END}/online_time.parquet")
    assert "users out == users with an in-window event" in failed(root)


def test_verify_fails_on_reject_rate_and_missing_run(sample, root):
    run_all(root, sample)
    assert failed(root, max_reject_rate=0.0) == {"reject rate under threshold"}
    assert failed(DataRoot(str(Path(root.base) / "nothing"))) == {"partition"}


def test_verify_fails_on_a_missing_shard(sample, root):
    part, _ = run_all(root, sample)
    root.remove(part["shards"][0]["path"])
    assert {"every shard has a result", "rows_in == rows_parsed + rejects"} <= failed(root)


def test_return_values_are_small_and_json_able(sample, root):
    import json

    part, totals = run_all(root, sample)
    for d in (part, totals):
        assert len(json.dumps(d)) < 5000
    assert set(totals) >= {"end", "users", "online_seconds", "sessions", "rows_in", "rows_parsed", "rejects",
                           "shards", "shards_with_results", "distinct_users_in_window", "result_path", "published"}
    assert totals["shards"] == totals["shards_with_results"] == 4 and totals["published"] is None


# --- sample logs -----------------------------------------------------------------------------

def test_generate_logs_is_deterministic_and_realistic(tmp_path):
    a = generate_logs(str(tmp_path / "a"), END, days=3, users=200, seed=3)
    b = generate_logs(str(tmp_path / "b"), END, days=3, users=200, seed=3)
    assert [Path(f).read_bytes() for f in a["files"]] == [Path(f).read_bytes() for f in b["files"]]
    assert [Path(f).name for f in a["files"]] == ["2014-01-09.log", "2014-01-10.log", "2014-01-11.log"]
    text = Path(a["files"][1]).read_text()
    lines = text.splitlines()
    assert lines[0].startswith("logtime")
    stamps = [ln[:19] for ln in lines[1:] if not ln.startswith("2014-02-30")]
    assert stamps == sorted(stamps) and {s[:10] for s in stamps} == {"2014-01-10"}
    assert 0 < a["malformed"] / a["events"] < 0.003
    assert any("\t" in ln for ln in lines) and any("   " in ln for ln in lines)
    assert any(ln.split()[-1] not in ("login", "logout", "get", "post") for ln in lines[1:])
    big = generate_logs(str(tmp_path / "c"), END, days=2, users=50, seed=1, events=50_000)
    assert 45_000 < big["events"] <= 50_000 + 100


# --- the CLI's streaming path, the fallbacks, block reading -------------------------------------

def test_stream_equals_the_task_group_and_the_oracle(sample, tmp_path):
    from include.online_time.pipeline import run_window

    want, rows_in, rejects = oracle_for_dir(sample, END)
    outs = {}
    for stream in (True, False):
        work = tmp_path / f"w{stream}"
        out = str(tmp_path / f"o{stream}.parquet")
        part, totals = run_window(str(work), str(sample), END, out, shards=3, stream=stream)
        assert part.get("mode") == ("stream" if stream else None)
        assert (part["rows_in"], part["rejects"], totals["users"]) == (rows_in, rejects, len(want))
        assert totals["distinct_users_in_window"] == len(want)
        outs[stream] = pq.read_table(out)
        assert (work / "online_time" / str(END) / "rejects.parquet").exists()
    assert outs[True].equals(outs[False])
    assert {r["userid"]: (r["online_seconds"], r["sessions"]) for r in outs[True].to_pylist()} == want


def test_stream_and_partition_give_the_same_for_any_block_size_and_threads(sample, tmp_path):
    from include.online_time.stream import stream_window

    ref = stream_window(DataRoot(str(tmp_path / "ref")), str(sample), END)
    ref_t = DataRoot(str(tmp_path / "ref")).read_table(f"online_time/{END}/online_time.parquet")
    for block, threads in ((97, 1), (4096, 2), (1 << 30, 2)):
        r = DataRoot(str(tmp_path / f"b{block}"))
        got = stream_window(r, str(sample), END, block_bytes=block, threads=threads)
        assert got[1]["online_seconds"] == ref[1]["online_seconds"] and got[0]["rows_in"] == ref[0]["rows_in"]
        assert r.read_table(f"online_time/{END}/online_time.parquet").equals(ref_t)
        assert r.read_table(f"online_time/{END}/rejects.parquet").equals(
            DataRoot(str(tmp_path / "ref")).read_table(f"online_time/{END}/rejects.parquet"))
        r2 = DataRoot(str(tmp_path / f"p{block}"))
        part = sort_and_partition(r2, str(sample), END, shards=3, block_bytes=block, threads=threads)
        assert part["rows_in"] == ref[0]["rows_in"]
        merge_report(r2, END, [compute_shard(r2, s, END) for s in part["shards"]])
        assert r2.read_table(f"online_time/{END}/online_time.parquet").equals(ref_t)


BACKWARDS = {
    # user 1's events go back in time inside a file and across files; user 2's are in order
    date(2014, 1, 5): "2014-01-05 10:00:20 1 get\n2014-01-05 10:00:00 1 login\n2014-01-05 10:00:00 2 login\n"
                      "2014-01-05 10:00:30 1 post\n2014-01-05 10:00:40 2 get\n",
    date(2014, 1, 6): "2014-01-05 10:00:50 1 get\n2014-01-06 00:00:10 2 login\n2014-01-06 00:00:20 2 get\n",
}


def test_users_going_back_in_time_fall_back_to_sorting(tmp_path, monkeypatch):
    from include.online_time import stream
    from include.online_time.pipeline import run_window

    full_week(tmp_path / "logs", BACKWARDS)
    want, _, _ = oracle_for_dir(tmp_path / "logs", END)
    assert want == {1: (150, 1), 2: (50, 2)}
    for threads in (1, 2):  # 2: stops while the next block is being parsed in the second thread
        assert stream.stream_window(DataRoot(str(tmp_path / "s")), str(tmp_path / "logs"), END,
                                    block_bytes=16, threads=threads) is None
        assert not (tmp_path / "s" / "online_time").exists()  # nothing written
    calls = []
    real = stream.stream_window
    monkeypatch.setattr(stream, "stream_window", lambda *a, **k: calls.append(1) or real(*a, **k))
    part, totals = run_window(str(tmp_path / "w"), str(tmp_path / "logs"), END, str(tmp_path / "o.parquet"))
    assert calls == [1] and "mode" not in part and len(part["shards"]) == 8
    got = pq.read_table(tmp_path / "o.parquet").to_pylist()
    assert {r["userid"]: (r["online_seconds"], r["sessions"]) for r in got} == want


@pytest.mark.parametrize("fast", [True, False])
def test_compute_shard_sorts_only_when_needed_and_runs_without_the_accelerator(tmp_path, root, monkeypatch, fast):
    from video_analytics import online_time as core

    if not fast:
        monkeypatch.setattr(core, "HAVE_FAST", False)
    full_week(tmp_path / "logs", BACKWARDS)
    want, _, _ = oracle_for_dir(tmp_path / "logs", END)
    run_all(root, tmp_path / "logs", shards=1)
    assert result_dict(root) == want
    sorted_calls = []
    real = core.order_by_user_time
    monkeypatch.setattr(core, "order_by_user_time", lambda *a: sorted_calls.append(1) or real(*a))
    run_all(root, tmp_path / "logs", shards=1)
    assert sorted_calls == [1]  # the shard with user 1 going back is sorted
    sorted_calls.clear()
    root2 = DataRoot(str(tmp_path / "in-order"))
    full_week(tmp_path / "ok", {date(2014, 1, 5): "2014-01-05 10:00:00 1 login\n2014-01-05 10:00:30 1 get\n"})
    run_all(root2, tmp_path / "ok", shards=1)
    assert sorted_calls == ([] if fast else [1])
    assert result_dict(root2) == {1: (30, 1)}


def test_empty_and_unterminated_files_and_long_lines(tmp_path):
    from include.online_time.logs import iter_file_blocks

    (tmp_path / "empty.log").write_bytes(b"")
    assert list(iter_file_blocks(str(tmp_path / "empty.log"), 8)) == []
    text = b"a" * 30 + b"\nbb\n" + b"c" * 20
    (tmp_path / "x.log").write_bytes(text)
    blocks = [bytes(b) for b in iter_file_blocks(str(tmp_path / "x.log"), 8)]
    assert b"".join(blocks) == text and all(b.endswith(b"\n") for b in blocks[:-1])
    assert [bytes(b) for b in iter_file_blocks("file://" + str(tmp_path / "x.log"), 1 << 20)] == [text]


def test_parse_threads_adapts_to_cores_and_load(monkeypatch):
    import os

    from include.online_time import logs

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.3, 0.0, 0.0))
    assert logs.parse_threads() == 2
    monkeypatch.setattr(os, "getloadavg", lambda: (1.5, 0.0, 0.0))  # the other core is busy
    assert logs.parse_threads() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert logs.parse_threads() == 1
