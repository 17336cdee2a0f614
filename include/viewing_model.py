"""A viewing model for sample plays (issue 24): every play's ``K_J`` is its own.

A viewer starts (mostly at the beginning), watches contiguous 2-second segments, seeks forward or back
(a seek back rewatches, which raises counts), and stops anywhere. Videos last from a few segments to a
two-hour film's 3,600. Pure functions of a NumPy ``Generator``; the texts are built by Arrow in C.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

FILM_SEGMENTS = 3600  # two hours of 2-second segments
MAX_BOUTS = 8
MAX_COUNT = 9
# GB/T 2260 province codes, as some collectors send the region: an int (same order as sample_plays.REGIONS)
REGION_CODES = [11, 31, 44, 33, 32, 51, 42, 43, 35, 37, 41, 13, 21, 61, 50, 12, 53, 45, 34, 36, 22, 23, 14, 52,
                62, 46, 65, 15, 64, 63, 54, 44]
CITIES_CN = ["北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "武汉", "长沙", "厦门", "济南", "郑州",
             "Ürümqi", "Hohhot"]
BROWSERS_CN = ["QQ浏览器", "360安全浏览器", "搜狗浏览器", "UC浏览器", "猎豹浏览器"]


def video_lengths(rng: np.random.Generator, n: int) -> np.ndarray:
    """Segments per video: clips (a few segments to half an hour, most a few minutes), episodes (20-45
    minutes) and films (80-120 minutes)."""
    kind = rng.choice(3, size=n, p=[0.62, 0.28, 0.10])
    clip = np.clip(np.round(rng.lognormal(np.log(150), 0.8, n)), 3, 900)
    episode = rng.integers(600, 1351, n)
    film = rng.integers(2400, FILM_SEGMENTS + 1, n)
    return np.choose(kind, [clip, episode, film]).astype(np.int64)


def watch(rng: np.random.Generator, length: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plays of videos of ``length`` segments -> ``(offsets, segments, counts)``: play ``i``'s ``K_J`` is
    ``segments[offsets[i]:offsets[i+1]]`` (numbered from 1, ascending) with their counts (1 to ``MAX_COUNT``).

    Each play is up to ``MAX_BOUTS`` bouts of contiguous watching; between bouts the viewer seeks forward
    (skipping segments) or back (rewatching, which raises counts). Counts are summed per segment through a
    difference array over the play's video, so the cost is linear in the videos' lengths."""
    n = len(length)
    length = np.maximum(np.asarray(length, dtype=np.int64), 1)
    base = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(length, out=base[1:])
    diff = np.zeros(int(base[-1]) + 1, dtype=np.int32)
    bouts = np.minimum(rng.geometric(0.4, n), MAX_BOUTS)
    pos = np.where(rng.random(n) < 0.45, 0, (rng.random(n) * length).astype(np.int64))
    for b in range(MAX_BOUTS):
        live = np.flatnonzero(bouts > b)
        p, ln = pos[live], length[live]
        end = np.minimum(p + np.maximum(1, np.round(rng.exponential(0.3, len(live)) * ln)).astype(np.int64), ln)
        np.add.at(diff, base[live] + p, 1)
        np.add.at(diff, base[live] + end, -1)
        if b == 0:
            first, first_len = p, end - p
        back = np.minimum(end - p, 60)
        jump = np.where(rng.random(len(live)) < 0.55, (rng.random(len(live)) * 0.3 * ln).astype(np.int64) + 1,
                        -(rng.random(len(live)) * back).astype(np.int64) - 1)
        pos[live] = np.clip(end + jump, 0, ln - 1)
    counts = np.cumsum(diff[:-1], dtype=np.int32)
    for _ in range(2):  # a segment of the first bout requested again while buffering
        stall = rng.random(n) < 0.4
        counts[base[:-1][stall] + first[stall] + (rng.random(int(stall.sum())) * first_len[stall]).astype(np.int64)] += 1
    watched = counts > 0
    per_play = np.add.reduceat(watched, base[:-1]) if n else np.zeros(0, dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(per_play, out=offsets[1:])
    flat = np.flatnonzero(watched)
    segs = flat - np.repeat(base[:-1], per_play) + 1
    return offsets, segs, np.minimum(counts[flat], MAX_COUNT).astype(np.int64)


_TOKENS: list = []


def kj_texts(offsets: np.ndarray, segs: np.ndarray, counts: np.ndarray) -> list[str]:
    """Compact ``K_J`` JSON texts ``[[s,c],...]``, one per play (pre-formatted pairs joined by Arrow)."""
    if not _TOKENS:
        s, c = np.divmod(np.arange(FILM_SEGMENTS * MAX_COUNT), MAX_COUNT)
        _TOKENS.append(pc.binary_join_element_wise("[", pc.cast(pa.array(s + 1), pa.string()), ",",
                                                   pc.cast(pa.array(c + 1), pa.string()), "]", ""))
    pair = _TOKENS[0].take(pa.array((segs - 1) * MAX_COUNT + counts - 1))
    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int64()).cast(pa.int32()), pair)
    return pc.binary_join_element_wise("[", pc.binary_join(lists, ","), "]", "").to_pylist()


def realistic_kj(rng: np.random.Generator, length_of_play: np.ndarray, seen: set | None = None,
                 batch: int = 20_000):
    """One ``K_J`` text per play (an iterator), drawn by ``watch`` in batches (bounded memory); each text's
    hash is added to ``seen`` when given (to count the distinct ones)."""
    for at in range(0, len(length_of_play), batch):
        texts = kj_texts(*watch(rng, length_of_play[at: at + batch]))
        if seen is not None:
            seen.update(map(hash, texts))
        yield from texts


def region_labels(rng: np.random.Generator, region_of: np.ndarray, n_regions: int, int_rate: float = 0.2
                  ) -> np.ndarray:
    """Region indices into ``REGIONS + REGION_CODES``: about ``int_rate`` of the plays send the province's
    code (an int) instead of its name."""
    as_int = rng.random(len(region_of)) < int_rate
    return np.where(as_int, region_of + n_regions, region_of)
