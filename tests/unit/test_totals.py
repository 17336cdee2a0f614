"""The running totals' fold (video_analytics.totals): per key one addition per day, bit-identical
whatever order the days were first run in, Mtraffic per calendar month, which states are kept."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from video_analytics import totals as tot


def _contrib(seed: int, vids=("1000001", "1000002", "1001001")) -> dict[str, pd.DataFrame]:
    rng = random.Random(seed)
    vs = sorted(rng.sample(list(vids), k=rng.randint(1, len(vids))))
    vid = pd.DataFrame({"vid": vs, "uid": [v[:4] for v in vs],
                        "Traffic": [rng.random() * 1e3 for _ in vs], "EngageSum": [rng.random() for _ in vs],
                        "Load": [rng.randint(0, 9) for _ in vs], "Play": [rng.randint(0, 9) for _ in vs],
                        "IP": [rng.randint(1, 5) for _ in vs], "PlayID": [rng.randint(1, 99) for _ in vs]})
    vr = pd.DataFrame([(v, r, rng.randint(1, 3), rng.random() * 10, rng.random(), rng.randint(0, 4))
                       for v in vs for r in ("GD", "BJ") if rng.random() < 0.7],
                      columns=["vid", "region", "ClickNum", "Traffic", "EngageSum", "Load"])
    vseg = pd.DataFrame([(v, s, rng.randint(1, 9), rng.randint(1, 3)) for v in vs for s in range(1, 4)],
                        columns=["vid", "seg", "heat", "plays"])
    uid = vid.groupby("uid", as_index=False)[["Traffic", "EngageSum", "Load", "Play", "IP"]].sum()
    ur = vr.assign(uid=vr["vid"].str[:4]).groupby(["uid", "region"], as_index=False)[
        ["ClickNum", "Traffic", "EngageSum"]].sum()
    return {"vid": vid, "vid_region": vr, "vid_seg": vseg, "uid": uid, "uid_region": ur}


def _fold_all(days: dict[str, dict]) -> dict[str, pd.DataFrame]:
    state, prev = tot.empty_state(), None
    for d in sorted(days):
        state, prev = tot.fold(state, prev, days[d], d), d
    return state


def test_fold_adds_per_key_and_keeps_the_max_play_id():
    a, b = _contrib(1), _contrib(2)
    s = tot.fold(tot.fold(tot.empty_state(), None, a, "20140101"), "20140101", b, "20140102")
    both = pd.concat([a["vid"], b["vid"]])
    for vid, row in s["vid"].set_index("vid").iterrows():
        rows = both[both["vid"] == vid]
        assert row["Traffic"] == pytest.approx(rows["Traffic"].sum(), rel=1e-12)
        assert row["Play"] == rows["Play"].sum() and row["PlayID"] == rows["PlayID"].max()
        assert row["uid"] == vid[:4]
    assert list(s["vid"]["vid"]) == sorted(both["vid"].unique())
    assert s["vid_seg"]["heat"].sum() == a["vid_seg"]["heat"].sum() + b["vid_seg"]["heat"].sum()


def test_refolding_from_a_kept_state_is_bit_identical():
    days = {f"201401{d:02d}": _contrib(d) for d in range(1, 11)}
    full = _fold_all(days)
    order = sorted(days)
    state, prev = tot.empty_state(), None
    for d in order[:6]:
        state, prev = tot.fold(state, prev, days[d], d), d
    for d in order[6:]:
        state, prev = tot.fold(state, prev, days[d], d), d
    assert tot.equal_states(state, full) == []
    changed = dict(days)
    changed[order[3]] = _contrib(99)
    assert tot.equal_states(_fold_all(changed), full) != []


def test_fold_refuses_a_day_not_after_the_state():
    s = tot.fold(tot.empty_state(), None, _contrib(1), "20140105")
    with pytest.raises(ValueError, match="not after"):
        tot.fold(s, "20140105", _contrib(2), "20140105")


def test_month_traffic_restarts_with_each_month():
    jan31, feb1, feb2 = _contrib(1), _contrib(2), _contrib(3)
    s = tot.fold(tot.empty_state(), None, jan31, "20140131")
    assert tot.month_traffic(s) == pytest.approx(jan31["uid"].set_index("uid")["Traffic"].to_dict())
    s = tot.fold(s, "20140131", feb1, "20140201")
    assert tot.month_traffic(s) == pytest.approx(feb1["uid"].set_index("uid")["Traffic"].to_dict())
    s = tot.fold(s, "20140201", feb2, "20140202")
    expect = pd.concat([feb1["uid"], feb2["uid"]]).groupby("uid")["Traffic"].sum().to_dict()
    assert tot.month_traffic(s) == pytest.approx(expect)


def test_kept_snapshots_are_month_ends_and_the_last_two_days():
    days = ["20140130", "20140131", "20140203", "20140228", "20140301", "20140302", "20140303"]
    assert tot.kept_snapshots(days) == {"20140131", "20140228", "20140302", "20140303"}
    assert tot.kept_snapshots(["20140105"]) == {"20140105"}
    assert tot.kept_snapshots([]) == set()


def test_key_hashes_follow_exactly_the_rows_of_each_document():
    days = {"20140101": _contrib(1), "20140102": _contrib(2)}
    s = _fold_all(days)
    h = tot.key_hashes(s)
    assert set(h) == {("vid", v) for v in s["vid"]["vid"]} | {("uid", u) for u in s["uid"]["uid"]}
    assert tot.key_hashes(_fold_all(days)) == h
    some = sorted(s["vid"]["vid"])[:1]
    assert tot.key_hashes(s, vids=some, uids=[]) == {("vid", some[0]): h[("vid", some[0])]}
    vid = s["vid_seg"]["vid"].iloc[0]
    bumped = dict(s)
    bumped["vid_seg"] = s["vid_seg"].copy()
    bumped["vid_seg"].loc[0, "heat"] += 1  # one heat-map cell of one video
    after = tot.key_hashes(bumped)
    assert {k for k in h if h[k] != after[k]} == {("vid", vid)}
    bumped["month"] = s["month"].assign(Mtraffic=s["month"]["Mtraffic"] + 1.0)  # Mtraffic is in the uid doc
    assert {k[0] for k in h if h[k] != tot.key_hashes(bumped)[k]} == {"vid", "uid"}
    assert set(tot.key_hashes(s, vids=[vid], uids=[])) == {("vid", vid)}


def test_stat_documents_equal_the_reference_builders():
    from tests.support import stat_reference as core

    days = {f"201401{d:02d}": _contrib(d) for d in range(1, 6)}
    s = _fold_all(days)
    # runs that merge and runs that do not: equal neighbours, a gap, a value change
    s["vid_seg"] = pd.DataFrame({"vid": ["1000001"] * 5 + ["1000002"] * 2, "seg": [1, 2, 3, 5, 6, 1, 2],
                                 "heat": [2, 2, 3, 3, 3, 10**12, 10**12], "plays": [1, 1, 1, 1, 2, 7, 8]})
    ref = core.vid_stat_docs(s)
    got = {vid: (uid, doc) for uid, vid, doc in tot.vid_stat_docs(s)}
    assert got == ref
    assert got["1000001"][1]["Htmap"] == "[[0,4,2],[4,6,3],[8,12,3]]"
    assert got["1000002"][1]["Ptmap"] == "[[0,2,7],[2,4,8]]"
    for _uid, vid, doc in tot.vid_stat_docs(s):
        assert all(type(doc[f]) is type(ref[vid][1][f]) for f in doc)
    assert dict(tot.uid_stat_docs(s)) == core.uid_stat_docs(s, tot.month_traffic(s))
    assert [v for _, v, _ in tot.vid_stat_docs(s, ["1000002", "nope"])] == ["1000002"]
    assert tot.uid_stat_docs(s, []) == []
