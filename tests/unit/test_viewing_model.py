"""The viewing model of the sample plays (issue 24): every play's ``K_J`` is its own."""

from __future__ import annotations

import numpy as np
import ujson

from include import viewing_model as vm


def test_video_lengths_span_clips_to_a_two_hour_film():
    lengths = vm.video_lengths(np.random.default_rng(1), 20_000)
    assert lengths.min() >= 3 and lengths.max() <= vm.FILM_SEGMENTS
    assert (lengths < 30).any() and (lengths > 3000).any()


def test_plays_are_contiguous_runs_with_seeks_rewatches_and_stops():
    rng = np.random.default_rng(2)
    length = vm.video_lengths(rng, 5000)
    offsets, segs, counts = vm.watch(rng, length)
    assert len(offsets) == 5001 and offsets[-1] == len(segs) == len(counts)
    per_play = np.diff(offsets)
    assert per_play.min() >= 1 and per_play.max() <= vm.FILM_SEGMENTS
    assert (counts >= 1).all() and (counts <= vm.MAX_COUNT).all() and (counts == 1).mean() > 0.9
    gaps = jumps = 0
    for i in range(5000):
        s = segs[offsets[i]: offsets[i + 1]]
        assert (np.diff(s) > 0).all() and s[0] >= 1 and s[-1] <= length[i]  # ascending, within the video
        gaps += bool((np.diff(s) > 1).any())  # a seek forward skipped segments
        jumps += bool((counts[offsets[i]: offsets[i + 1]] > 1).any())  # a rewatch
    assert gaps > 500 and jumps > 500
    assert (segs[offsets[:-1]] > 1).mean() > 0.3  # not every play starts at the beginning
    assert (per_play < 5).any() and (per_play > 3000).any()


def test_kj_texts_are_compact_json_of_the_plays():
    rng = np.random.default_rng(3)
    offsets, segs, counts = vm.watch(rng, vm.video_lengths(rng, 300))
    texts = vm.kj_texts(offsets, segs, counts)
    for i, text in enumerate(texts):
        pairs = [[int(s), int(c)] for s, c in zip(segs[offsets[i]: offsets[i + 1]], counts[offsets[i]: offsets[i + 1]],
                                                   strict=True)]
        assert text == ujson.dumps(pairs)


def test_nearly_every_play_is_distinct():
    rng = np.random.default_rng(4)
    texts = list(vm.realistic_kj(rng, np.full(20_000, 1800)))
    assert len(set(texts)) / len(texts) > 0.95
