"""``K_S`` and ``K_z1`` read where they were fetched (issue 24): the C reader (``_fastplay.decode_s_arrow``,
``json_text_arrow``) turns the Arrow buffers of a chunk's raw values into Arrow columns, without a Python
object per value. It decides only plain values (every field once, text as strings, numbers as finite
non-negative numbers, valid UTF-8); every other value goes to ``play_decode``'s Python rule, and its result
is patched into the columns, so the quarantine reasons have one definition (tested against the list path).

A column of ``play_decode.decode_columns`` is then a list or an Arrow array; the helpers here read both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from video_analytics import play_fast

# Field kinds of the C reader: text; text or an unsigned integer (written as its digits, as ``str`` would);
# a number. ``region`` comes as a province code from some collectors, and only its text form is kept.
TEXT, TEXT_OR_UINT, NUMBER = 0, 1, 2


def is_arrow(values) -> bool:
    return isinstance(values, pa.Array | pa.ChunkedArray)


def none_mask(values) -> np.ndarray | None:
    """Per value whether it is absent (``None`` or null), or None when no value is."""
    if is_arrow(values):
        return values.is_null().to_numpy(zero_copy_only=False) if values.null_count else None
    if None not in values:
        return None
    return np.equal(np.asarray(values, dtype=object), None).astype(bool)


def types_of(values) -> set:
    """The types of the values present (an Arrow column: ``str`` or ``float``)."""
    if is_arrow(values):
        return {str} if pa.types.is_string(values.type) else {float}
    return set(map(type, values)) - {type(None)}


def pick(values, rows) -> list:
    """The values at ``rows``, as Python objects."""
    if is_arrow(values):
        return [values[i].as_py() for i in np.asarray(rows).tolist()]
    return [values[i] for i in rows]


def _string_array(n: int, offsets: bytes, data: bytes, valid: np.ndarray | None = None) -> pa.Array:
    bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
    return pa.Array.from_buffers(pa.string(), n, [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)])


def _patch(col: pa.Array, mask: np.ndarray, values: list, as_float: Callable) -> pa.Array | list:
    """``col`` with the values where ``mask`` is set replaced by ``values`` (Python objects): an Arrow column
    when they fit its type (numbers: by ``as_float``, ``None`` as null), else a list."""
    nulls = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    if pa.types.is_floating(col.type):
        repl = pa.array(as_float(values), pa.float64(), mask=nulls)
    elif all(type(v) is str for v in values if v is not None):
        try:
            repl = pa.array(values, pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError):  # lone surrogates
            repl = None
    else:
        repl = None
    if repl is None:
        out = col.to_pylist()
        for i, v in zip(np.flatnonzero(mask).tolist(), values, strict=True):
            out[i] = v
        return out
    return pc.replace_with_mask(col, pa.array(mask), repl)


def s_fields(s_raw) -> tuple[dict, np.ndarray, np.ndarray]:
    """``play_decode._fields`` of an Arrow ``binary`` column: the C reader's columns, with the Python rule
    (``play_decode._s_row``) giving the values the reader leaves."""
    from video_analytics import play_decode as pd

    fields, kinds, too_large, no_fields = pd.FIELDS, pd._S_KINDS, pd._TOO_LARGE, pd._NO_FIELDS  # noqa: SLF001
    status, cols = play_fast.decode_s_arrow(s_raw, fields, kinds, pd._S_QUICK)  # noqa: SLF001
    n = len(status)
    out = {f: (_string_array(n, *c) if k != NUMBER else pa.array(np.frombuffer(c, dtype=np.float64)))
           for f, k, c in zip(fields, kinds, cols, strict=True)}
    bad = np.zeros(n, dtype=bool)
    big = np.zeros(n, dtype=bool)
    mask = status != 0
    slow = np.flatnonzero(mask)
    if not len(slow):
        return out, bad, big
    rows = [pd._s_row(s_raw[i].as_py()) if status[i] == 2 else no_fields for i in slow.tolist()]  # noqa: SLF001
    big[slow] = [r is too_large for r in rows]
    bad[slow] = [type(r) is not tuple and r is not too_large for r in rows]
    rows = [r if type(r) is tuple else no_fields for r in rows]
    for k, (f, kind) in enumerate(zip(fields, kinds, strict=True)):
        values = [r[k] for r in rows]
        if kind == TEXT_OR_UINT:  # an int within 64 bits is text there, as its digits (as in the C reader)
            values = [str(v) if type(v) is int and pd.is_text(v) else v for v in values]
        out[f] = _patch(out[f], mask, values, pd._as_float)  # noqa: SLF001
    return out, bad, big


def uinfo(z1_raw) -> pa.Array:
    """Per ``K_z1`` value its ``zz_uinfo`` (the Python rule ``play_decode._dumps_text`` for values that are not
    valid UTF-8) as an Arrow string column, null where absent."""
    from video_analytics.play_decode import _dumps_text

    status, offsets, data = play_fast.json_text_arrow(z1_raw)
    valid = status == 0
    col = _string_array(len(status), offsets, data, None if valid.all() else valid)
    slow = np.flatnonzero(status == 2)
    if len(slow):
        col = pc.replace_with_mask(col, pa.array(status == 2), pa.array([_dumps_text(z1_raw[i].as_py())
                                                                          for i in slow.tolist()], pa.string()))
    return col


class JValues:
    """A chunk's ``K_J`` values (``play_decode.decode_columns``): a list (``None`` where absent), or an Arrow
    ``binary`` array that the C parser reads in place (``arrow_values``: no Python object per value)."""

    def __init__(self, values) -> None:
        self.arrow = isinstance(values, pa.Array | pa.ChunkedArray)
        if self.arrow and not play_fast.arrow_values(values):
            values, self.arrow = values.to_pylist(), False
        self.values = values
        self.missing = none_mask(values)

    def codes(self) -> tuple[np.ndarray, Sequence]:
        """Per value a code into the values to parse (-1: absent), and those values."""
        if not self.arrow:
            from video_analytics.play_decode import factorize

            codes, uniques = play_fast.value_codes(self.values) if play_fast.HAVE_FAST else factorize(self.values)
            return codes, list(uniques)
        n = len(self.values)
        if self.missing is None:
            return np.arange(n, dtype=np.int64), self.values
        codes = np.full(n, -1, dtype=np.int64)
        codes[~self.missing] = np.arange(n - int(self.missing.sum()))
        return codes, self.values  # the parser leaves the nulls out

    def pick(self, rows: np.ndarray) -> list:
        return pick(self.values, rows)
