"""Prune on a data root the plays pipeline wrote (real Redis and MariaDB): ``verify --all`` still passes."""

from __future__ import annotations

import datetime as dt

import pytest

from include import prune as pr
from include.plays.verify import verify_history
from include.sample_plays import generate_plays
from include.storage import DataRoot
from tests.support.plays import mysql_hook, run_day
from video_analytics import conventions as conv
from video_analytics import retention as ret

DAYS = ["20140301", "20140302", "20140303"]


def test_verify_all_passes_after_the_harshest_prune(redis_db, mysql_db, tmp_path):
    hook = mysql_hook(mysql_db)
    root = DataRoot(str(tmp_path / "r"))
    for d in DAYS:
        generate_plays(redis_db, hook, d, plays=150, seed=int(d[-1]))
        run_day(root, redis_db, hook, d, cleanup=True)
    assert all(c["ok"] for c in verify_history(root, redis=redis_db))
    out = pr.prune(root, ret.Policy(0, 1, 1), today=dt.date(2014, 3, 4))
    assert {(r["day"], r["kind"]) for r in out["removed"]} == {
        (conv.as_date(d).isoformat(), k) for d in DAYS[:2] for k in ("snapshot", "quarantine")}
    assert not root.exists(conv.plays_path(DAYS[0], "snapshot"))
    assert root.exists(conv.plays_path(DAYS[2], "snapshot", "plays_raw.parquet"))
    assert all(c["ok"] for c in verify_history(root, redis=redis_db))
    with pytest.raises(pr.DayPruned, match="20140301 cannot be re-run"):
        pr.refuse_pruned(root, DAYS[0])
    pr.refuse_pruned(root, DAYS[2])
