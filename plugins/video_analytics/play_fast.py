"""The optional C path of ``video_analytics.play_decode`` (``_fastplay.c``, issue 24): every ``K_J`` value
parsed, checked and turned into its merged-runs ``Htmap`` in one pass, and the per (vid, segment) sums.

The C parser decides only plain ``[[s,c],...]`` texts with in-range numbers; every other value (other JSON,
numbers out of range, over the size limit, other types) goes to ``play_decode``'s Python rule, so the
quarantine reasons and limits have one definition. ``HAVE_FAST`` is False without the compiled module
(no C compiler at install); the Python path then runs alone, with the same results (tested).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

try:
    from video_analytics import _fastplay
except ImportError:  # pragma: no cover - built by setup.py when a C compiler is present
    _fastplay = None

HAVE_FAST = _fastplay is not None
FAST_MAX_BYTES = 1 << 20  # longer values go to the Python rule (the K_J size limit)
SUMS_MAX_SEGMENT = 1 << 20  # dense per-vid sums up to this segment; beyond, NumPy


def resp_mget(buf, pos: int, filled: int, count: int, state: bytearray | None = None):
    """``_fastplay.resp_mget``: the ``count`` MGET replies in ``buf[pos:filled]`` as Arrow buffers, or None
    while they are incomplete (see ``_fastplay.c``). ``state`` (``resp_state()``, the same one for every call
    of one read) lets each call scan on from where the last one stopped."""
    return _fastplay.resp_mget(buf, pos, filled, count, state)


def resp_state() -> bytearray:
    """A new scan state for ``resp_mget``."""
    return bytearray(_fastplay.RESP_STATE_SIZE)


def resp_mget_command(keys: list, suffix: bytes) -> bytes:
    """``MGET`` of each key (str as UTF-8, or bytes) + ``suffix``, in RESP."""
    return _fastplay.resp_mget_command(keys, suffix)


def value_codes(values: Sequence) -> tuple[np.ndarray, list]:
    """Per value its own code (``None``: -1) and the values present: what the C path parses instead of
    ``factorize`` (parsing a ``K_J`` costs less than hashing it, and a day's values are nearly all distinct)."""
    present = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    codes = np.full(len(values), -1, dtype=np.int64)
    codes[present] = np.arange(int(present.sum()))
    return codes, [v for v in values if v is not None]


def arrow_values(values) -> bool:
    """Whether ``values`` is an Arrow ``binary`` array (or chunked), which the C parser reads in place
    (``decode_j_arrow``: no Python object per value), its nulls left out."""
    return HAVE_FAST and isinstance(values, pa.Array | pa.ChunkedArray) and values.type == pa.binary()


def _arrow_parts(values: pa.Array | pa.ChunkedArray) -> list[tuple]:
    parts = []
    for c in values.chunks if isinstance(values, pa.ChunkedArray) else [values]:
        if len(c):
            valid, offsets, data = c.buffers()
            parts.append((np.frombuffer(offsets, dtype=np.int32, count=c.offset + len(c) + 1)[c.offset:],
                          data if data is not None else b"", valid if c.null_count else None, c.offset))
    return parts


def key_hashes(values: pa.Array) -> np.ndarray:
    """A 64-bit hash per value of an Arrow string or binary array (``_fastplay.hash_binary``; pandas'
    ``hash_array`` without the C module): equal values, equal hashes."""
    if HAVE_FAST:
        return np.frombuffer(_fastplay.hash_binary(_arrow_parts(values.cast(pa.binary()))), dtype=np.uint64)
    import pandas as pd

    return pd.util.hash_array(np.asarray(values.to_pylist(), dtype=object))


def decode_s_arrow(values, fields, kinds: bytes, max_len: int) -> tuple[np.ndarray, list]:
    """``_fastplay.decode_s_arrow`` of an Arrow ``binary`` column (nulls kept): status per value (0 decoded,
    1 null, 2 left to the Python rule) and per field the Arrow string buffers, or float64 bytes."""
    status, cols = _fastplay.decode_s_arrow(_arrow_parts(values), tuple(f.encode() for f in fields), kinds, max_len)
    return np.frombuffer(status, dtype=np.uint8), cols


def json_text_arrow(values) -> tuple[np.ndarray, bytes, bytes]:
    """``_fastplay.json_text_arrow`` of an Arrow ``binary`` column: status per value, offsets, data."""
    status, offsets, data = _fastplay.json_text_arrow(_arrow_parts(values))
    return np.frombuffer(status, dtype=np.uint8), offsets, data


def segment_table(uniques: Sequence) -> tuple:
    """``play_decode.build_segment_table(uniques)``, by the C parser (``uniques``: a list, or an Arrow array as
    ``arrow_values`` takes, whose nulls are left out)."""
    from video_analytics import play_decode as pd

    if arrow_values(uniques):
        present = np.flatnonzero(uniques.is_valid().to_numpy(zero_copy_only=False)) if uniques.null_count else None
        values = present if present is not None else uniques

        def value(i: int):
            return uniques[int(present[i]) if present is not None else i].as_py()

        out = _fastplay.decode_j_arrow(_arrow_parts(uniques), int(pd.SEGMENT_MAX), FAST_MAX_BYTES)
    else:
        values = uniques if type(uniques) is list else list(uniques)
        value = values.__getitem__
        out = _fastplay.decode_j(values, int(pd.SEGMENT_MAX), FAST_MAX_BYTES)
    status, htmap, lengths, segs, cnts = out
    lengths_a = np.frombuffer(lengths, dtype=np.int64).copy()
    offsets = np.zeros(len(values), dtype=np.int64)
    if len(values) > 1:
        np.cumsum(lengths_a[:-1], out=offsets[1:])
    reasons: list[str | None] = [None] * len(values)
    flat_s, flat_c = [np.frombuffer(segs, dtype=np.int32)], [np.frombuffer(cnts, dtype=np.int32)]
    end = len(flat_s[0])
    for i in np.flatnonzero(np.frombuffer(status, dtype=np.uint8)).tolist():
        parsed = pd._parsed_segments(value(i))  # noqa: SLF001 - the one Python rule, and its cache
        if isinstance(parsed, str):
            reasons[i], htmap[i] = parsed, "[]"
            continue
        s, c, htmap[i] = parsed
        offsets[i], lengths_a[i] = end, len(s)
        flat_s.append(np.asarray(s, dtype=np.int64))  # segments and counts are < 2**31 (checked)
        flat_c.append(np.asarray(c, dtype=np.int64))
        end += len(s)
    table = pd.SegmentTable(htmap, lengths_a, offsets, *(f[0] if len(f) == 1 else np.concatenate(f).astype(np.int32)
                                                         for f in (flat_s, flat_c)))
    return table, reasons


def segment_sums(vid: Sequence[str], jcode: np.ndarray, segtab) -> pa.Table | None:
    """``play_decode.segment_sums`` by the C summer (one pass over each play's segments, dense per vid), or
    None when a segment is beyond ``SUMS_MAX_SEGMENT`` (the NumPy path then)."""
    from video_analytics import play_decode as pd

    max_seg = int(segtab.segs.max()) if len(segtab.segs) else 0
    if max_seg > SUMS_MAX_SEGMENT or (len(segtab.segs) and int(segtab.segs.min()) < 1):
        return None
    codes, names = pd.factorize(vid)
    by_name = np.argsort(np.asarray(names, dtype=object), kind="stable")
    rank = np.empty(len(names), dtype=np.int64)
    rank[by_name] = np.arange(len(names))
    out = _fastplay.segment_sums(np.ascontiguousarray(rank[codes]), np.ascontiguousarray(jcode, dtype=np.int64),
                                 segtab.offsets, segtab.lengths, np.ascontiguousarray(segtab.segs, dtype=np.int32),
                                 np.ascontiguousarray(segtab.cnts, dtype=np.int32), len(names), max_seg)
    vr, seg, heat, plays = (np.frombuffer(b, dtype=np.int64) for b in out)
    vids = pa.array([names[i] for i in by_name.tolist()], pa.string())
    return pa.table([vids.take(pa.array(vr)), pa.array(seg), pa.array(heat), pa.array(plays)], schema=pd.SEG_SCHEMA)


def _sorted_unique(t: pa.Table) -> bool:
    """Whether ``t``'s (vid, seg) rows are strictly increasing, vids in code-point order (UTF-8 byte order)
    and without nulls: already what ``sum_segment_tables`` would make of it alone."""
    if any(t.column(c).null_count for c in ("vid", "seg")):
        return False
    n = t.num_rows
    if n < 2:
        return True
    vid, seg = t.column("vid"), t.column("seg")
    a, b = vid.slice(0, n - 1), vid.slice(1)
    after = pc.or_(pc.less(a, b), pc.and_(pc.equal(a, b), pc.less(seg.slice(0, n - 1), seg.slice(1))))
    return pc.all(after).as_py()


def sum_segment_tables(parts: list[pa.Table]) -> pa.Table:
    """Per (vid, segment) ``heat`` and ``plays`` of several ``SEG_SCHEMA`` tables summed, sorted by vid and
    segment: what an Arrow ``group_by`` and ``sort_by`` give, by one stable NumPy sort of int64 keys (vid rank,
    segment), which merges the parts' sorted runs in about linear time. Segments are in [0, 2**32). One part
    already sorted and unique (``_sorted_unique``) comes back as it is."""
    from video_analytics import play_decode as pd

    parts = [p for p in parts if p is not None and p.num_rows]
    if not parts:
        return pd.SEG_SCHEMA.empty_table()
    if len(parts) == 1 and _sorted_unique(parts[0]):
        return parts[0].cast(pd.SEG_SCHEMA)
    names = pc.unique(pa.chunked_array([c for p in parts for c in p.column("vid").chunks], pa.string()))
    names = names.take(pc.sort_indices(names))  # code-point order, as Python sorts str
    keys, heat, plays = [], [], []
    for p in parts:
        rank = pc.index_in(p.column("vid"), value_set=names).to_numpy(zero_copy_only=False).astype(np.int64)
        keys.append((rank << 32) | p.column("seg").to_numpy().astype(np.int64))
        heat.append(p.column("heat").to_numpy())
        plays.append(p.column("plays").to_numpy())
    key = np.concatenate(keys)
    order = np.argsort(key, kind="stable")
    key = key[order]
    first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
    ukey = key[first]
    return pa.table([names.take(pa.array(ukey >> 32)), pa.array(ukey & 0xFFFFFFFF),
                     pa.array(np.add.reduceat(np.concatenate(heat)[order], first).astype(np.int64)),
                     pa.array(np.add.reduceat(np.concatenate(plays)[order], first).astype(np.int64))],
                    schema=pd.SEG_SCHEMA)


_I32_MAX = 2**31 - 1


class SegmentSums:
    """Per (vid, segment) ``heat`` and ``plays`` summed over the chunks of a day, as they arrive: each vid's
    sums live in a dense block of one flat array of int32 cells (segment = offset in the block; blocks grow by
    doubling, the array by a quarter), so adding a chunk is a few vectorised operations (``add``, a chunk's
    ``SEG_SCHEMA`` table) or one C pass over its plays (``add_plays``), whatever the day's size. A day whose
    blocks would pass ``max_cells`` (segments far apart), or a cell past 2**31 - 1, is summed exactly (int64)
    by ``sum_segment_tables`` instead, the parts merged once their rows pass ``merge_rows`` and twice the
    merged ones. Rows with ``plays`` 0 are dropped."""

    def __init__(self, max_cells: int = 1 << 25, merge_rows: int = 1 << 19) -> None:
        self.max_cells, self.merge_rows = max_cells, merge_rows
        self.ids: dict[str, int] = {}
        self.off = np.zeros(64, dtype=np.int64)
        self.cap = np.zeros(64, dtype=np.int64)
        self.heat = np.zeros(1 << 16, dtype=np.int32)
        self.plays = np.zeros(1 << 16, dtype=np.int32)
        self.used = 0
        self.parts: list[pa.Table] | None = None  # the sparse fallback: tables, merged as they grow
        self.part_rows = 0

    def add(self, t: pa.Table) -> None:
        """Adds a chunk's per (vid, segment) sums (unique (vid, segment) rows, segments >= 0)."""
        if not t.num_rows:
            return
        if self.parts is not None:
            self._add_sparse(t)
            return
        enc = t.column("vid").combine_chunks().dictionary_encode()
        new = [self.ids.setdefault(v, len(self.ids)) for v in enc.dictionary.to_pylist()]
        gid = np.asarray(new, dtype=np.int64)[enc.indices.to_numpy(zero_copy_only=False)]
        seg = t.column("seg").to_numpy()
        need = np.zeros(len(self.ids), dtype=np.int64)
        np.maximum.at(need, gid, seg + 1)
        short = self._short(need)
        if len(short) and not self._grow(short, need[short]):
            return self._to_sparse(t)
        idx = self.off[gid] + seg
        heat = self.heat[idx] + t.column("heat").to_numpy()
        plays = self.plays[idx] + t.column("plays").to_numpy()
        if len(idx) and max(int(heat.max()), int(plays.max())) > _I32_MAX:
            return self._to_sparse(t)
        self.heat[idx], self.plays[idx] = heat, plays
        return None

    def add_plays(self, vid: Sequence[str], jcode: np.ndarray, segtab) -> bool:
        """Adds plays (their vid and ``K_J`` code into ``segtab``) straight into the dense blocks, in C: what
        ``add(play_decode.segment_sums(vid, jcode, segtab))`` adds, without the chunk's table. False, with
        nothing added, when that is not possible here (no C module, sparse sums, a segment outside
        [1, ``SUMS_MAX_SEGMENT``], blocks past ``max_cells``, a cell past 2**31 - 1): the caller adds the
        chunk's table then."""
        from video_analytics import play_decode as pd

        if not HAVE_FAST or self.parts is not None or not len(vid):
            return not len(vid) and self.parts is None
        codes, names = pd.factorize(vid)
        gid = np.asarray([self.ids.setdefault(v, len(self.ids)) for v in names], dtype=np.int64)[codes]
        args = (gid, np.ascontiguousarray(jcode, dtype=np.int64), segtab.offsets, segtab.lengths,
                np.ascontiguousarray(segtab.segs, dtype=np.int32))
        need = np.zeros(len(self.ids), dtype=np.int64)
        if _fastplay.sums_need(*args, need, SUMS_MAX_SEGMENT) < 0:
            return False
        short = self._short(need)
        if len(short) and not self._grow(short, need[short]):
            return False
        cnts = np.ascontiguousarray(segtab.cnts, dtype=np.int32)
        return _fastplay.sums_add(*args, cnts, self.off, self.heat, self.plays) == 0

    def _short(self, need: np.ndarray) -> np.ndarray:
        """The groups whose blocks are smaller than ``need`` (the block tables grown to every group first)."""
        if len(self.ids) > len(self.cap):
            grow = max(len(self.ids), 2 * len(self.cap))
            self.off, self.cap = (np.concatenate([a, np.zeros(grow - len(a), dtype=np.int64)]) for a in (self.off, self.cap))
        return np.flatnonzero(need > self.cap[: len(need)])

    def _to_sparse(self, t: pa.Table) -> None:
        self.parts = [self.table()]
        self.part_rows = self.parts[0].num_rows
        self.heat = self.plays = np.zeros(0, dtype=np.int32)
        self._add_sparse(t)

    def _grow(self, gids: np.ndarray, need: np.ndarray) -> bool:
        """New blocks (at least half again the old size) for ``gids``, old sums copied; False past ``max_cells``.
        Before the flat array grows, the blocks left behind by earlier growth are reclaimed (``_compact``)."""
        size = np.maximum(need, self.cap[gids] + self.cap[gids] // 2)
        add = int(size.sum())
        if int(self.cap[: len(self.ids)].sum()) - int(self.cap[gids].sum()) + add > self.max_cells:
            return False
        old = [(self.heat[o: o + c], self.plays[o: o + c]) for o, c in zip(self.off[gids].tolist(),
                                                                            self.cap[gids].tolist(), strict=True)]
        if self.used + add > min(len(self.heat), self.max_cells):
            old = [(h.copy(), p.copy()) for h, p in old]  # the compaction may move other blocks over them
            self._compact(gids)
        total = self.used + add
        if total > len(self.heat):  # then used + add > len(heat): compacted above, so ``old`` holds copies
            n = min(max(total, len(self.heat) + len(self.heat) // 4), max(total, self.max_cells))
            for a in (self.heat, self.plays):
                a.resize(n, refcheck=False)  # realloc: no old and new copy side by side at the peak; zero-filled
        starts = self.used + np.concatenate(([0], np.cumsum(size)[:-1]))
        for s, (h, p) in zip(starts.tolist(), old, strict=True):
            self.heat[s: s + len(h)] = h
            self.plays[s: s + len(p)] = p
        self.off[gids], self.cap[gids] = starts, size
        self.used = total
        return True

    def _compact(self, gids: np.ndarray) -> None:
        """The blocks of every vid but ``gids`` moved to the front in offset order (in place: a block only moves
        down), the cells after them zeroed; ``used`` is then what they hold (``gids`` get new blocks after)."""
        keep = np.zeros(len(self.cap), dtype=bool)
        keep[: len(self.ids)] = True
        keep[gids] = False
        ids = np.flatnonzero(keep & (self.cap > 0))
        ids = ids[np.argsort(self.off[ids], kind="stable")]
        at = 0
        for g, o, c in zip(ids.tolist(), self.off[ids].tolist(), self.cap[ids].tolist(), strict=True):
            if o != at:
                self.heat[at: at + c] = self.heat[o: o + c]
                self.plays[at: at + c] = self.plays[o: o + c]
                self.off[g] = at
            at += c
        self.heat[at: self.used] = 0
        self.plays[at: self.used] = 0
        self.cap[gids] = 0
        self.used = at

    def _add_sparse(self, t: pa.Table) -> None:
        self.parts.append(t)
        self.part_rows += t.num_rows
        if self.part_rows > max(self.merge_rows, 2 * self.parts[0].num_rows):
            self.parts = [sum_segment_tables(self.parts)]
            self.part_rows = self.parts[0].num_rows

    def table(self) -> pa.Table:
        """The sums as a ``SEG_SCHEMA`` table, sorted by vid and segment."""
        from video_analytics import play_decode as pd

        parts = list(self.tables())
        return pa.concat_tables(parts) if parts else pd.SEG_SCHEMA.empty_table()

    def tables(self, block_cells: int = 1 << 21):
        """``table()`` in parts, in order, each from vids of at most about ``block_cells`` cells (memory: a few
        times that, not the day's)."""
        from video_analytics import play_decode as pd

        if self.parts is not None:
            yield sum_segment_tables(self.parts)
            return
        names = pa.array(list(self.ids), pa.string())
        by_name = pc.sort_indices(names).to_numpy()
        ends = np.cumsum(self.cap[by_name])
        lo = 0
        while lo < len(by_name):
            hi = max(lo + 1, int(np.searchsorted(ends, (ends[lo - 1] if lo else 0) + block_cells, "right")))
            grp = by_name[lo:hi]
            cap = self.cap[grp]
            cell = np.repeat(self.off[grp] - np.concatenate(([0], np.cumsum(cap)[:-1])), cap) + np.arange(int(cap.sum()))
            hit = self.plays[cell] > 0
            rank = np.repeat(np.arange(len(grp)), cap)[hit]
            cell = cell[hit]
            if len(cell):
                yield pa.table([names.take(pa.array(grp[rank])), pa.array(cell - self.off[grp][rank]),
                                pa.array(self.heat[cell].astype(np.int64)), pa.array(self.plays[cell].astype(np.int64))],
                               schema=pd.SEG_SCHEMA)
            lo = hi


def merge_sorted_sums(parts, min_rows: int = 1 << 18):
    """Sorted ``SEG_SCHEMA`` sums from several sources merged and summed, block by block: ``parts`` is one
    iterator per source of its record batches or tables, each source sorted by (vid, segment) with unique
    rows. Yields tables sorted by (vid, segment), each vid whole in one block, blocks in order; memory is a
    few batches per source, whatever the day's size."""
    srcs = [iter(p) for p in parts]
    pend: list[pa.Table | None] = [None] * len(srcs)
    done = [False] * len(srcs)

    def fill(k: int) -> None:
        nxt = next(srcs[k], None)
        if nxt is None:
            done[k] = True
            return
        nxt = nxt if isinstance(nxt, pa.Table) else pa.Table.from_batches([nxt])
        pend[k] = nxt if pend[k] is None or not pend[k].num_rows else pa.concat_tables([pend[k], nxt])

    while True:
        for k in range(len(srcs)):
            while not done[k] and (pend[k] is None or pend[k].num_rows < min_rows):
                fill(k)
        live = [t for t in pend if t is not None and t.num_rows]
        if not live:
            return
        open_ends = [pend[k].column("vid")[-1].as_py() for k in range(len(srcs))
                     if not done[k] and pend[k] is not None and pend[k].num_rows]
        bound = min(open_ends) if open_ends else None  # a source's last vid may go on in its next batch
        take = []
        for k, t in enumerate(pend):
            if t is None or not t.num_rows:
                continue
            n = t.num_rows if bound is None else int(pc.sum(pc.less(t.column("vid"), bound)).as_py() or 0)
            take.append(t.slice(0, n))
            pend[k] = t.slice(n)
        if not any(t.num_rows for t in take):  # one vid fills every open batch: read on
            for k in range(len(srcs)):
                if not done[k] and pend[k] is not None and pend[k].num_rows and \
                        pend[k].column("vid")[-1].as_py() == bound:
                    fill(k)
            continue
        parts_ = [t for t in take if t.num_rows]
        yield parts_[0].combine_chunks() if len(parts_) == 1 else sum_segment_tables(parts_)
