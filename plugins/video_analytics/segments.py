"""Segment merge (CONTRACT §3)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def merge_segments(runs: Iterable[Sequence[int]]) -> list[list[int]]:
    """Merge adjacent ``[start, end, value]`` runs.

    Two neighbours merge when ``prev.end == next.start`` and their values are equal; the
    merged run keeps the first start and takes the last end. An empty input gives ``[]``
    (the legacy ``mergerPlaySeg`` gave ``[[]]``, CONTRACT §6).
    """
    out: list[list[int]] = []
    for start, end, value in runs:
        if out and out[-1][1] == start and out[-1][2] == value:
            out[-1][1] = end
        else:
            out.append([start, end, value])
    return out


def play_runs(kj: Iterable[Sequence[int]]) -> list[list[int]]:
    """A play's runs ``[[2s-2, 2s, count] for s, count in K_J]``, in ``K_J`` order, merged."""
    return merge_segments([2 * int(s) - 2, 2 * int(s), int(c)] for s, c in kj)


def map_runs(sums: dict[int, int]) -> list[list[int]]:
    """Merged ``[[2s-2, 2s, sums[s]] ...]`` sorted by segment ``s`` (the stat ``Htmap``/``Ptmap``)."""
    return merge_segments([2 * s - 2, 2 * s, int(v)] for s, v in sorted(sums.items()))
