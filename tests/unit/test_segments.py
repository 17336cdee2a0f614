"""CONTRACT §3: the segment merge."""

from hypothesis import given
from hypothesis import strategies as st

from video_analytics.segments import map_runs, merge_segments, play_runs


def test_empty_gives_empty_not_legacy_nested_list():
    assert merge_segments([]) == []
    assert play_runs([]) == []
    assert map_runs({}) == []


def test_adjacent_equal_values_merge_keeping_first_start_last_end():
    assert merge_segments([[0, 2, 1], [2, 4, 1], [4, 6, 1]]) == [[0, 6, 1]]


def test_different_values_or_gaps_do_not_merge():
    assert merge_segments([[0, 2, 1], [2, 4, 2]]) == [[0, 2, 1], [2, 4, 2]]
    assert merge_segments([[0, 2, 1], [4, 6, 1]]) == [[0, 2, 1], [4, 6, 1]]


def test_play_runs_from_kj_in_kj_order():
    # segments 1,2 (count 2) merge; 3 differs; 5 is not adjacent to 3
    assert play_runs([[1, 2], [2, 2], [3, 1], [5, 1]]) == [[0, 4, 2], [4, 6, 1], [8, 10, 1]]
    # K_J order is kept, not sorted: 3 then 1 never merge
    assert play_runs([[3, 1], [1, 1]]) == [[4, 6, 1], [0, 2, 1]]


def test_map_runs_sorted_by_segment_numerically():
    assert map_runs({10: 1, 2: 1, 1: 1, 3: 4}) == [[0, 4, 1], [4, 6, 4], [18, 20, 1]]


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 3), st.integers(0, 2)), max_size=30))
def test_merge_preserves_coverage_and_is_idempotent(parts):
    runs, pos = [], 0
    for gap, length, value in parts:
        start = pos + (gap if gap > 3 else 0)
        runs.append([start, start + length, value])
        pos = start + length
    merged = merge_segments(runs)
    assert merge_segments(merged) == merged
    assert sum(e - s for s, e, _ in merged) == sum(e - s for s, e, _ in runs)
    for a, b in zip(merged, merged[1:], strict=False):
        assert not (a[1] == b[0] and a[2] == b[2])
