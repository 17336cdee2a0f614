"""Reading the window's log files for the online-time stages: blocks of whole lines, parsed.

Local files are read through ``mmap`` (no copy: the C parser reads the mapped pages), other
fsspec URLs by plain reads. ``prefetch`` parses the next block in a second thread while the
caller uses the current one, when a second core is free (``parse_threads``); the C parser
releases the GIL.

Finished logs (CONTRACT §1): a day's log is complete with its ``<file>.done`` marker or the next
day's file (``log_status``); a day lost for good is accepted by an operator in the data root
(``missing/<day>.json``, ``accept_missing``), and every window that includes it names it.
"""

from __future__ import annotations

import mmap
import os
import posixpath
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import numpy as np
import pyarrow as pa

from video_analytics import conventions as conv
from video_analytics import online_time as core

STREAM_BLOCK_BYTES = 16 << 20


def _iter_blocks(path: str, block_bytes: int):
    """Blocks of whole lines of a file read through fsspec (the last one may lack its newline)."""
    import fsspec

    rest = b""
    with fsspec.open(path, "rb") as fh:
        while True:
            chunk = fh.read(block_bytes)
            if not chunk:
                break
            buf = rest + chunk
            cut = buf.rfind(b"\n") + 1
            if cut == 0:
                rest = buf
                continue
            block, rest = buf[:cut], buf[cut:]
            yield block
    if rest:
        yield rest


def parse_threads() -> int:
    """1 or 2: a second parsing thread only when a second core is ours and not already busy
    (1-minute load average of the other work below the free cores)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    if cores < 2:
        return 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = 0.0
    return 2 if load < cores - 1 else 1


def iter_file_blocks(path: str, block_bytes: int = STREAM_BLOCK_BYTES):
    """Blocks of whole lines of one file: memoryviews of an mmap for local files (released when
    the next block is asked for), bytes otherwise."""
    if "://" in path and not path.startswith("file://"):
        yield from _iter_blocks(path, block_bytes)
        return
    local = path[len("file://"):] if path.startswith("file://") else path
    with open(local, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            mm.madvise(mmap.MADV_SEQUENTIAL)
            pos = 0
            while pos < size:
                stop = min(size, pos + block_bytes)
                if stop < size:
                    cut = mm.rfind(b"\n", pos, stop)
                    stop = cut + 1 if cut >= 0 else (mm.find(b"\n", stop) + 1 or size)
                view = memoryview(mm)[pos:stop]
                try:
                    yield view
                finally:
                    view.release()
                pos = stop


def parsed_blocks(files: list[str], block_bytes: int):
    """``(file index, Parsed)`` of every block in file order (the parser runs in the caller's thread)."""
    for fi, path in enumerate(files):
        before = 0
        for block in iter_file_blocks(path, block_bytes):
            p = core.parse_any(block, before, header_allowed=before == 0)
            before += p.lines
            yield fi, p


def prefetch(gen, threads: int):
    """Run ``gen`` one item ahead in a second thread when ``threads`` is 2."""
    if threads < 2:
        yield from gen
        return
    sentinel = object()
    with ThreadPoolExecutor(1, thread_name_prefix="online-time-parse") as ex:
        fut = ex.submit(next, gen, sentinel)
        while True:
            item = fut.result()
            if item is sentinel:
                return
            fut = ex.submit(next, gen, sentinel)
            yield item




# --- Finished logs (CONTRACT §1): a day is complete with its ``.done`` marker or the next day's file --

DONE_SUFFIX = ".done"
MISSING_DIR = "missing"
COMPLETE = ("done marker", "next day's file")


def _log_fs(log_dir: str):
    import fsspec

    fs, base = fsspec.core.url_to_fs(log_dir)
    return fs, (lambda name: posixpath.join(base, name) if base else name)


def log_status(log_dir: str, day: date) -> str:
    """Where ``<log_dir>/<day>.log`` stands: ``"missing"``, ``"done marker"``, ``"next day's file"``
    (rotated), or ``"no sign of being complete"`` (it may still be written)."""
    fs, path = _log_fs(log_dir)
    name = conv.log_file_name(day)
    if not fs.isfile(path(name)):
        return "missing"
    if fs.exists(path(name + DONE_SUFFIX)):
        return "done marker"
    if fs.isfile(path(conv.log_file_name(day + timedelta(days=1)))):
        return "next day's file"
    return "no sign of being complete"


def write_done_markers(files: list[str]) -> None:
    """Mark local log files complete, as a collector does (``<file>.done``, empty)."""
    for f in files:
        with open(f + DONE_SUFFIX, "wb"):
            pass


def missing_path(day: date) -> str:
    """``missing/<YYYY-MM-DD>.json``: an operator's acceptance that the day's log is lost."""
    return f"{MISSING_DIR}/{day.isoformat()}.json"


def accept_missing(root, day: date, reason: str, by: str | None = None) -> dict:
    """Record that ``day``'s log is lost for good: windows that include it run without it (an
    absent file reads as an empty day, a present one as it stands) and their reports name it."""
    import datetime as dt
    import getpass

    record = {"day": day.isoformat(), "reason": reason, "accepted_by": by or getpass.getuser(),
              "accepted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    root.write_json(record, missing_path(day))
    return record


def accepted_missing(root, days) -> dict:
    """``{day: acceptance record}`` of the ``days`` accepted as lost in the data root ``root``."""
    if root is None:
        return {}
    return {d: root.read_json(missing_path(d)) for d in days if root.exists(missing_path(d))}


def window_missing(root, log_dir: str, end: date, window_days: int) -> list[dict]:
    """The accepted-missing days of the window ending ``end``, each record with ``file``: whether
    its log is ``"absent"`` (read as an empty day) or ``"read as it stands"``."""
    _, window = core.window_dates(end, window_days, 0)
    out = []
    for d, rec in accepted_missing(root, window).items():
        out.append({**rec, "file": "absent" if log_status(log_dir, d) == "missing" else "read as it stands"})
    return out


def window_status(log_dir: str, days, root=None) -> dict:
    """``{day: status}``: ``log_status`` of each day, ``"accepted missing"`` for a day accepted in ``root``
    whose log is not complete."""
    accepted = accepted_missing(root, days)
    out = {}
    for d in days:
        st = log_status(log_dir, d)
        out[d] = "accepted missing" if d in accepted and st not in COMPLETE else st
    return out


# --- Arrow columns without pyarrow's pandas checks (``pa.array`` imports pandas: 0.1 s of start-up) --

def column(values: np.ndarray, typ: pa.DataType) -> pa.Array:
    """A NumPy array as an Arrow array of ``typ`` (same width), without a copy."""
    return pa.Array.from_buffers(typ, len(values), [None, pa.py_buffer(np.ascontiguousarray(values))])


_NUMPY_OF = {pa.int64(): np.int64, pa.int32(): np.int32, pa.int8(): np.int8, pa.timestamp("s"): np.int64,
             pa.float64(): np.float64}


def numpy_of(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An Arrow column without nulls as a NumPy array (timestamps as int64 seconds), read-only and
    without a copy for one chunk; ``to_numpy`` imports pandas (0.3-0.5 s of a task's start-up)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    dtype = _NUMPY_OF.get(col.type)
    if dtype is None or col.null_count:
        return col.to_numpy(zero_copy_only=False)
    if not len(col):
        return np.empty(0, dtype)
    return np.frombuffer(col.buffers()[1], dtype=dtype, count=len(col), offset=col.offset * np.dtype(dtype).itemsize)


def string_column(values: list[str]) -> pa.Array:
    """A list of ``str`` as an Arrow string array."""
    data = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(data) + 1, np.int32)
    np.cumsum([len(d) for d in data], out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(data), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))])


REJECT_SCHEMA = pa.schema([("file", pa.string()), ("line", pa.int64()), ("reason", pa.string()), ("raw", pa.string())])


class BlockTally:
    """What the parsed blocks of a window add up to: rows in, rows parsed, and the rejected lines."""

    def __init__(self) -> None:
        self.rows_in = self.rows_parsed = 0
        self._file: list[str] = []
        self._line: list[int] = []
        self._reason: list[str] = []
        self._raw: list[str] = []

    def add(self, file: str, p) -> None:
        """Count one parsed block of ``file``."""
        self.rows_in += p.rows_in
        self.rows_parsed += len(p.userid)
        if p.reject_reason:
            self._file.extend([file] * len(p.reject_reason))
            self._line.extend(p.reject_line.tolist())
            self._reason.extend(p.reject_reason)
            self._raw.extend(p.reject_raw)

    def rejects(self) -> pa.Table:
        return rejects_table(self._file, self._line, self._reason, self._raw)


def rejects_table(files: list[str], lines: list[int], reasons: list[str], raws: list[str]) -> pa.Table:
    """The rejects dataset: file, line, reason, raw text."""
    return pa.Table.from_arrays([string_column(files), column(np.array(lines, np.int64), pa.int64()),
                                 string_column(reasons), string_column(raws)], schema=REJECT_SCHEMA)
