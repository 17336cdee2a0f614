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


def value_codes(values: Sequence) -> tuple[np.ndarray, list]:
    """Per value its own code (``None``: -1) and the values present: what the C path parses instead of
    ``factorize`` (parsing a ``K_J`` costs less than hashing it, and a day's values are nearly all distinct)."""
    present = np.fromiter((v is not None for v in values), dtype=bool, count=len(values))
    codes = np.full(len(values), -1, dtype=np.int64)
    codes[present] = np.arange(int(present.sum()))
    return codes, [v for v in values if v is not None]


def segment_table(uniques: Sequence) -> tuple:
    """``play_decode.build_segment_table(uniques)``, by the C parser."""
    from video_analytics import play_decode as pd

    values = uniques if type(uniques) is list else list(uniques)
    status, htmap, lengths, segs, cnts = _fastplay.decode_j(values, int(pd.SEGMENT_MAX), FAST_MAX_BYTES)
    lengths_a = np.frombuffer(lengths, dtype=np.int64).copy()
    offsets = np.zeros(len(values), dtype=np.int64)
    if len(values) > 1:
        np.cumsum(lengths_a[:-1], out=offsets[1:])
    reasons: list[str | None] = [None] * len(values)
    flat_s, flat_c = [np.frombuffer(segs, dtype=np.int32)], [np.frombuffer(cnts, dtype=np.int32)]
    end = len(flat_s[0])
    for i in np.flatnonzero(np.frombuffer(status, dtype=np.uint8)).tolist():
        parsed = pd._parsed_segments(values[i])  # noqa: SLF001 - the one Python rule, and its cache
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


def sum_segment_tables(parts: list[pa.Table]) -> pa.Table:
    """Per (vid, segment) ``heat`` and ``plays`` of several ``SEG_SCHEMA`` tables summed, sorted by vid and
    segment: what an Arrow ``group_by`` and ``sort_by`` give, by one stable NumPy sort of int64 keys (vid rank,
    segment), which merges the parts' sorted runs in about linear time. Segments are in [0, 2**32)."""
    from video_analytics import play_decode as pd

    parts = [p for p in parts if p is not None and p.num_rows]
    if not parts:
        return pd.SEG_SCHEMA.empty_table()
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


class SegmentSums:
    """Per (vid, segment) ``heat`` and ``plays`` summed over the chunks of a day, as they arrive. The sums live in
    pages of ``PAGE`` consecutive segments of one vid (cells of one int64 ``heat`` and one int32 ``plays`` array,
    grown in place), found by a sorted array of page keys (vid id << 32 | segment // ``PAGE``): adding a chunk's
    ``SEG_SCHEMA`` table (sorted by vid and segment, as the decoders write them) is a few vectorised operations,
    a page is made only where a vid has segments (segments far apart cost a page each), and nothing is copied
    or left behind as the day grows. A day whose pages would pass ``max_cells`` is summed by
    ``sum_segment_tables`` instead, the parts merged once their rows pass ``merge_rows`` and twice the merged
    ones. ``plays`` (plays of the day per cell) fits int32; ``heat`` stays int64. Rows with ``plays`` 0 are
    dropped. ``blocks`` gives the sums vid range by vid range; ``table`` all at once."""

    PAGE = 64

    def __init__(self, max_cells: int = 1 << 25, merge_rows: int = 1 << 19) -> None:
        self.max_cells, self.merge_rows = max_cells, merge_rows
        self.ids: dict[str, int] = {}
        self.pkeys = np.zeros(0, dtype=np.int64)  # sorted page keys
        self.pages = np.zeros(0, dtype=np.int64)  # the page number of each key
        self.heat = np.zeros(1 << 16, dtype=np.int64)
        self.plays = np.zeros(1 << 16, dtype=np.int32)
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
        shift = self.PAGE.bit_length() - 1
        pk = (gid << 32) | (seg >> shift)
        brk = np.flatnonzero(pk[1:] != pk[:-1]) + 1
        run_keys = pk[np.concatenate(([0], brk))]
        if len(np.unique(run_keys)) == len(run_keys):  # sorted by vid and segment: one run per page
            run_of_row = np.repeat(np.arange(len(run_keys)), np.diff(np.concatenate(([0], brk, [len(pk)]))))
        else:
            run_keys, run_of_row = np.unique(pk, return_inverse=True)
        page = self._pages(run_keys)
        if page is None:
            self.parts = [self.table()]
            self.part_rows = self.parts[0].num_rows
            self.pkeys = self.pages = self.heat = self.plays = None
            self._add_sparse(t)
            return
        idx = page[run_of_row] * self.PAGE + (seg & (self.PAGE - 1))
        self.heat[idx] += t.column("heat").to_numpy()
        self.plays[idx] += t.column("plays").to_numpy().astype(np.int32)

    def _pages(self, keys: np.ndarray) -> np.ndarray | None:
        """The page number of each of ``keys`` (new pages made); None past ``max_cells``."""
        pos = np.searchsorted(self.pkeys, keys)
        found = pos < len(self.pkeys)
        found[found] = self.pkeys[pos[found]] == keys[found]
        fresh = np.flatnonzero(~found)
        if len(fresh):
            n = len(self.pkeys)
            cells = (n + len(fresh)) * self.PAGE
            if cells > self.max_cells:
                return None
            if cells > len(self.heat):
                size = max(cells, len(self.heat) * 5 // 4)
                for a in (self.heat, self.plays):
                    a.resize(size, refcheck=False)  # realloc in place: no second copy at the peak, zero-filled
            add = np.sort(keys[fresh])
            at = np.searchsorted(self.pkeys, add)
            self.pkeys = np.insert(self.pkeys, at, add)
            self.pages = np.insert(self.pages, at, np.arange(n, n + len(add)))
            pos = np.searchsorted(self.pkeys, keys)
        return self.pages[pos]

    def _add_sparse(self, t: pa.Table) -> None:
        self.parts.append(t)
        self.part_rows += t.num_rows
        if self.part_rows > max(self.merge_rows, 2 * self.parts[0].num_rows):
            self.parts = [sum_segment_tables(self.parts)]
            self.part_rows = self.parts[0].num_rows

    def blocks(self, rows: int = 1 << 20):
        """The sums as ``SEG_SCHEMA`` tables of about ``rows`` rows (vid ranges, each vid whole unless it alone
        has more), in vid and segment order: the day's sums without all of them in memory at once."""
        from video_analytics import play_decode as pd

        if self.parts is not None:
            whole = sum_segment_tables(self.parts)
            for start in range(0, whole.num_rows, rows):
                yield whole.slice(start, rows)
            return
        if not self.ids:
            return
        names = pa.array(list(self.ids), pa.string())
        by_name = pc.sort_indices(names).to_numpy()
        lo = np.searchsorted(self.pkeys, by_name.astype(np.int64) << 32)
        hi = np.searchsorted(self.pkeys, (by_name.astype(np.int64) + 1) << 32)
        cum = np.cumsum(hi - lo)  # pages up to each vid, in name order
        per = max(1, rows // self.PAGE)
        start = 0
        while start < len(by_name):
            done = int(cum[start - 1]) if start else 0
            end = max(int(np.searchsorted(cum, done + per, side="right")), start + 1)
            yield self._block(names, by_name[start:end], lo[start:end], hi[start:end], pd.SEG_SCHEMA)
            start = end

    def _block(self, names: pa.Array, gids: np.ndarray, lo: np.ndarray, hi: np.ndarray, schema: pa.Schema):
        n = hi - lo
        which = np.repeat(np.arange(len(gids)), n)
        pos = np.repeat(lo - (np.cumsum(n) - n), n) + np.arange(int(n.sum()))
        off = np.arange(self.PAGE)
        cell = (self.pages[pos][:, None] * self.PAGE + off).ravel()
        plays = self.plays[cell]
        hit = np.flatnonzero(plays > 0)
        seg = ((self.pkeys[pos] & 0xFFFFFFFF)[:, None] * self.PAGE + off).ravel()[hit]
        vid = names.take(pa.array(gids[np.repeat(which, self.PAGE)[hit]]))
        return pa.table([vid, pa.array(seg), pa.array(self.heat[cell[hit]]), pa.array(plays[hit].astype(np.int64))],
                        schema=schema)

    def table(self) -> pa.Table:
        """The sums as one ``SEG_SCHEMA`` table, sorted by vid and segment."""
        from video_analytics import play_decode as pd

        if self.parts is not None:
            return sum_segment_tables(self.parts)
        return pa.concat_tables([pd.SEG_SCHEMA.empty_table(), *self.blocks()]).combine_chunks()
