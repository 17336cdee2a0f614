"""The key files of ``ingest_plays`` (``include.plays.ingest_keys``), without Redis: deduplication of
``T_endlist_D`` by 64-bit hashes is exact (collisions compared as strings), across file batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from include.plays import ingest_keys as keys_mod


def _keys_file(path: str, keys: list[str], per_batch: int = 4) -> np.ndarray:
    keys_mod.write_keys(path, (pa.array(keys[i: i + per_batch], pa.string()) for i in range(0, len(keys), per_batch)))
    return pd.util.hash_array(np.asarray(keys, dtype=object)) if keys else np.zeros(0, dtype=np.uint64)


def _read(path: str) -> list[str]:
    return [k for b in keys_mod.key_batches(path) for k in b.to_pylist()]


@pytest.mark.parametrize("collide", [False, True])
def test_first_occurrences_is_exact(monkeypatch, tmp_path, collide):
    """Keys sharing a hash are compared as strings (forced here: every key gets the same hash)."""
    if collide:
        monkeypatch.setattr(pd.util, "hash_array", lambda a: np.zeros(len(a), dtype=np.uint64))
    rng = np.random.default_rng(5)
    src, dst = str(tmp_path / "read.keys"), str(tmp_path / "unique.keys")
    for n in (0, 1, 2, 9, 500):
        keys = [f"1000001_{int(x)}" for x in rng.integers(0, max(1, n // 2), n)]
        hashes = _keys_file(src, keys)
        want = list(dict.fromkeys(keys))
        assert keys_mod.first_occurrences(src, hashes, dst) == len(want)
        assert _read(dst) == want
        for chunk in (1, 3, 1000):
            assert [k for c in keys_mod.key_chunks(dst, chunk) for k in c] == want
            assert all(len(c) == chunk for c in list(keys_mod.key_chunks(dst, chunk))[:-1])


def test_a_collision_of_distinct_keys_keeps_both(tmp_path):
    """Two different keys with one hash are both kept; a real repeat of either is dropped, in any batch."""
    src, dst = str(tmp_path / "read.keys"), str(tmp_path / "unique.keys")
    keys = ["1000001_1", "1000002_7", "1000001_2", "1000002_7", "1000001_1", "1000003_3"]
    _keys_file(src, keys, per_batch=2)
    hashes = np.array([5, 9, 5, 9, 5, 1], dtype=np.uint64)  # 1000001_1 and 1000001_2 collide
    assert keys_mod.first_occurrences(src, hashes, dst) == 4
    assert _read(dst) == ["1000001_1", "1000002_7", "1000001_2", "1000003_3"]


def test_dedup_by_hash_without_collisions_drops_repeats_only(tmp_path):
    src, dst = str(tmp_path / "read.keys"), str(tmp_path / "unique.keys")
    keys = ["a_1", "b_1", "a_1", "a_1", "c_1", "b_1"]
    hashes = _keys_file(src, keys, per_batch=5)
    assert keys_mod.first_occurrences(src, hashes, dst) == 3
    assert _read(dst) == ["a_1", "b_1", "c_1"]


@pytest.mark.parametrize("fast", [True, False])
def test_key_hashes_are_equal_for_equal_keys_and_spread_for_distinct_ones(monkeypatch, fast):
    """``play_fast.key_hashes`` (C, or pandas without it): the same key hashes the same wherever it lies in an
    array (sliced, after other keys); 300,000 distinct keys of every length from 0 to 40 bytes, non-ASCII among
    them, do not collide."""
    from video_analytics import play_fast as pf

    if fast and not pf.HAVE_FAST:
        pytest.skip("the C module is not built here")
    monkeypatch.setattr(pf, "HAVE_FAST", fast)
    keys = [f"{1000000 + i % 25000}_{i:x}" + "é" * (i % 3) + "x" * (i % 29) for i in range(300_000)]
    keys += ["", "a", "a" * 8, "a" * 16, "\x00", "\x00\x00"]
    h = pf.key_hashes(pa.array(keys, pa.string()))
    assert h.dtype == np.uint64 and len(np.unique(h)) == len(keys)
    again = pf.key_hashes(pa.array(["pad", *keys[::-1]], pa.string()).slice(1))
    assert np.array_equal(again, h[::-1])
