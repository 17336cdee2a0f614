"""The running totals' ``vid_seg`` folded vid range by vid range (include/plays/totals.py: ``seg_bands``,
``seg_replay``, ``fold_and_write``, ``seg_differs``) equal the whole-frame fold (``video_analytics.totals.fold``),
whatever the ranges; a changed row in any range is found."""

from __future__ import annotations

import random

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import include.plays.totals as totals
from include.plays.store import ParquetStream, write_frame
from include.storage import DataRoot
from video_analytics import totals as tot
from video_analytics.conventions import plays_path, totals_path
from video_analytics.play_decode import SEG_SCHEMA

DAYS = ["20140130", "20140131", "20140201"]


def _contrib(rng: random.Random) -> dict[str, pd.DataFrame]:
    vs = sorted(rng.sample([f"{u:04d}{v:03d}" for u in range(3) for v in range(12)] + ["é000001"], k=20))
    vid = pd.DataFrame({"vid": vs, "uid": [v[:4] for v in vs], "Traffic": [rng.random() for _ in vs],
                        "EngageSum": [rng.random() for _ in vs], "Load": [rng.randint(0, 9) for _ in vs],
                        "Play": [rng.randint(0, 9) for _ in vs], "IP": [rng.randint(1, 5) for _ in vs],
                        "PlayID": [rng.randint(1, 99) for _ in vs]})
    vr = pd.DataFrame([(v, "GD", 1, 0.5, 0.25, 1) for v in vs],
                      columns=["vid", "region", "ClickNum", "Traffic", "EngageSum", "Load"])
    segs = [(v, s, rng.randint(1, 2**40), rng.randint(1, 9)) for v in vs
            for s in sorted(rng.sample([*range(1, 30), 43_200], k=rng.randint(1, 8)))]
    vseg = pd.DataFrame(segs, columns=["vid", "seg", "heat", "plays"])
    uid = vid.groupby("uid", as_index=False)[["Traffic", "EngageSum", "Load", "Play", "IP"]].sum()
    ur = vr.assign(uid=vr["vid"].str[:4]).groupby(["uid", "region"], as_index=False)[
        ["ClickNum", "Traffic", "EngageSum"]].sum()
    return {"vid": vid, "vid_region": vr, "vid_seg": vseg, "uid": uid, "uid_region": ur}


def _store(root: DataRoot, day: str, c: dict[str, pd.DataFrame]) -> None:
    """A day's contribution as the rollup stores it; ``vid_seg`` in row groups of 7 rows."""
    for k, df in c.items():
        if k != "vid_seg":
            write_frame(root, df, plays_path(day, "contrib", f"{k}.parquet"))
    t = pa.Table.from_pandas(c["vid_seg"], schema=SEG_SCHEMA, preserve_index=False)
    with ParquetStream(root, plays_path(day, "contrib", "vid_seg.parquet"), SEG_SCHEMA) as out:
        for i in range(0, t.num_rows, 7):
            out.write(t.slice(i, 7))


@pytest.fixture
def days(tmp_path, monkeypatch):
    monkeypatch.setattr(totals, "SEG_BAND_ROWS", 10)
    root = DataRoot(str(tmp_path / "root"))
    rng = random.Random(5)
    contribs = {d: _contrib(rng) for d in DAYS}
    for d, c in contribs.items():
        _store(root, d, c)
    reg = {"days": dict.fromkeys(DAYS, "r"), "snapshots": {}, "head": None}
    return root, reg, contribs


def _whole(contribs, upto):
    state, prev = tot.empty_state(), None
    for d in DAYS[: DAYS.index(upto) + 1]:
        state, prev = tot.fold(state, prev, contribs[d], d), d
    return state


@pytest.mark.parametrize("band_rows", [1, 10, 1 << 20])
def test_vid_seg_folded_range_by_range_equals_the_whole_fold(days, monkeypatch, band_rows):
    root, reg, contribs = days
    monkeypatch.setattr(totals, "SEG_BAND_ROWS", band_rows)
    rels = [plays_path(d, "contrib", "vid_seg.parquet") for d in DAYS]
    bands = totals.seg_bands(root, rels)
    assert (len(bands) > 5) == (band_rows < 20)
    names = totals.fold_and_write(root, reg, None, DAYS, {"20140131", "20140201"})
    assert sorted(names) == ["20140131", "20140201"]
    for d, name in names.items():
        assert tot.equal_states(totals.load_state(root, name), _whole(contribs, d)) == []
    # a re-fold from the kept state of 20140131 (the snapshot as the next day's start)
    reg = {**reg, "snapshots": names}
    again = totals.fold_and_write(root, reg, "20140131", ["20140201"], {"20140201"})
    assert tot.equal_states(totals.load_state(root, again["20140201"]), _whole(contribs, "20140201")) == []
    assert totals.seg_differs(root, reg, None, DAYS, set(names)) == set()
    if band_rows == 10:  # the kept vid_seg is written range by range: row groups, read back by range
        f = pq.ParquetFile(root.path(totals_path("snapshots", names["20140201"], "vid_seg.parquet")))
        assert f.metadata.num_row_groups == len(totals.seg_bands(root, rels)) > 1


def test_a_changed_row_of_any_range_is_found(days):
    root, reg, contribs = days
    names = totals.fold_and_write(root, reg, None, DAYS, {"20140131", "20140201"})
    reg = {**reg, "snapshots": names}
    rel = totals_path("snapshots", names["20140131"], "vid_seg.parquet")
    t = root.read_table(rel).to_pandas()
    for row in (0, len(t) // 2, len(t) - 1):
        bad = t.copy()
        bad.loc[row, "heat"] += 1
        write_frame(root, bad, rel)
        assert totals.seg_differs(root, reg, None, DAYS, set(names)) == {"20140131"}
    write_frame(root, t.iloc[:-1], rel)  # a row missing
    assert totals.seg_differs(root, reg, None, DAYS, set(names)) == {"20140131"}


def test_a_file_out_of_order_is_folded_all_the_same(days, monkeypatch):
    """A ``vid_seg`` file not sorted by ``(vid, seg)`` (none that this project writes) folds, range by range,
    to the same totals: the sum sorts what it adds."""
    root, reg, contribs = days
    vids_down = contribs["20140131"]["vid_seg"].sort_values(["vid", "seg"], ascending=[False, True])
    write_frame(root, vids_down, plays_path("20140131", "contrib", "vid_seg.parquet"))  # segments still up
    names = totals.fold_and_write(root, reg, None, DAYS, {"20140131", "20140201"})
    for d, name in names.items():
        assert tot.equal_states(totals.load_state(root, name), _whole(contribs, d)) == []
