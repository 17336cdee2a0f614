"""Per-day summaries on the data root (CONTRACT §1: every log is read once), and windows made of them.

A day's log is parsed once into ``video_analytics.day_summary``'s per-user summary, stored as
``online_time/summaries/<YYYY-MM-DD>-<key>.arrow`` (Arrow IPC, memory-mapped when read; the file's
counts in the schema metadata) with its rejected rows beside it (``<same stem>.rejects.feather``, Arrow
IPC too). ``key`` hashes the file's identity, its size, modification time (ns) and a BLAKE2b hash of its content blocks (the first and
last 16 KiB and 14 evenly spaced ones), with the rule parameters: a file that changes in any of
them is parsed again, and its older summaries are removed.

A window combines its days' summaries, parsing only the days without one. A day whose file holds a
time outside its own day cannot be summarised alone: every window containing it runs the full
computation (``include.online_time.pipeline``), which is exact whatever the files hold.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pyarrow as pa

from include.online_time.logs import (
    STREAM_BLOCK_BYTES,
    BlockTally,
    column,
    numpy_of,
    parse_threads,
    parsed_blocks,
    prefetch,
    string_column,
)
from video_analytics import day_summary as ds
from video_analytics import online_time as core

log = logging.getLogger(__name__)

SUMMARY_DIR = "online_time/summaries"
SAMPLE_BLOCK = 16 << 10
SAMPLE_BLOCKS = 16
BYTES_PER_USER_DAY = 400  # about 12 events of 34 bytes: sizes the summariser's table once (a guess)
MAX_USERS_HINT = 1 << 20
_PA = {np.int64: pa.int64(), np.int32: pa.int32(), np.int8: pa.int8()}
SCHEMA = pa.schema([(c, _PA[d]) for c, d in zip(ds.COLUMNS, ds.DTYPES, strict=True)])


def file_identity(path: str) -> dict:
    """``size``, ``mtime_ns`` and ``blocks`` (hex BLAKE2b of the sampled content blocks) of a log file."""
    import fsspec

    fs, p = fsspec.core.url_to_fs(path)
    info = fs.info(p)
    size = int(info["size"])
    if "local" in fs.protocol or "file" in fs.protocol:
        mtime_ns = os.stat(p).st_mtime_ns
    else:
        m = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("updated")
        mtime_ns = int(m.timestamp() * 1e9) if hasattr(m, "timestamp") else int(float(m or 0) * 1e9)
    h = hashlib.blake2b(str(size).encode(), digest_size=16)
    with fs.open(p, "rb") as fh:
        if size <= SAMPLE_BLOCK * SAMPLE_BLOCKS:
            h.update(fh.read())
        else:
            step = (size - SAMPLE_BLOCK) // (SAMPLE_BLOCKS - 1)
            for k in range(SAMPLE_BLOCKS):
                fh.seek(min(k * step, size - SAMPLE_BLOCK))
                h.update(fh.read(SAMPLE_BLOCK))
    return {"size": size, "mtime_ns": mtime_ns, "blocks": h.hexdigest()}


def _digest(value) -> str:
    return hashlib.blake2b(json.dumps(value).encode(), digest_size=10).hexdigest()


def summary_path(day: date, identity: dict, rules: core.Rules) -> str:
    """``summaries/<day>-<rules>-<file>.arrow``: one name per (day, rules, file identity), so a file's earlier
    versions under the same rules can be found and removed without touching other rules' summaries."""
    rules_key = _digest([rules.min_gap, rules.timeout, rules.post_multiplier])[:8]
    file_key = _digest([identity["size"], identity["mtime_ns"], identity["blocks"], rules.min_gap, rules.timeout,
                        rules.post_multiplier])
    return f"{SUMMARY_DIR}/{day.isoformat()}-{rules_key}-{file_key}.arrow"


@dataclass
class DaySummary:
    """One day's summary, its counts and rejects, and whether this run parsed it."""

    day: date
    file: str
    summary: dict
    meta: dict
    rejects: pa.Table | None = None
    parsed: bool = False
    out_of_day: int = 0


class _DayParse:
    """One day's file being parsed, block by block: its tally and the C summariser (which counts the times
    outside the day). When a user's time goes back in the file, ``summary`` reads the file again, sorts
    the day and summarises it with NumPy (without the accelerator the events are kept for that)."""

    def __init__(self, path: str, day: date, rules: core.Rules, block_bytes: int, size: int = 0):
        self.path, self.rules, self.block_bytes = path, rules, block_bytes
        self.start = core.epoch_day(day) * 86400
        self.tally = BlockTally()
        users = min(size // BYTES_PER_USER_DAY, MAX_USERS_HINT)
        self.stream = ds.StreamingSummary(self.start, rules, users) if ds.HAVE_FAST else None
        self.parts: list[tuple] | None = None if self.stream is not None else []  # NumPy only: the day's events
        self.outside = 0

    def add(self, p) -> None:
        self.tally.add(self.path, p)
        if self.stream is not None:
            self.stream.feed(p.userid, p.logtime, p.action)
        else:
            self.parts.append((p.userid, p.logtime, p.action))

    def summary(self) -> dict:
        """The day's summary (empty when some time is outside the day: ``outside`` counts them)."""
        if self.stream is not None:
            self.outside = self.stream.outside()
        if self.outside:
            return ds.empty()
        if self.stream is not None and self.stream.ok:
            return self.stream.result()
        parts = self.parts if self.parts is not None else [
            (p.userid, p.logtime, p.action) for _, p in parsed_blocks([self.path], self.block_bytes)]
        uid, lt, act = (np.concatenate([x[k] for x in parts]) if parts else np.empty(0, t)
                        for k, t in enumerate((np.int64, np.int64, np.int8)))
        self.outside = ds.out_of_day(lt, self.start)
        return ds.empty() if self.outside else ds.summarize(uid, lt, act, self.start, self.rules)


def _rejects_path(rel: str) -> str:
    return rel[:-len(".arrow")] + ".rejects.feather"


def _write(root, rel: str, s: DaySummary) -> None:
    if s.rejects is not None and s.rejects.num_rows:
        with root.open_write(_rejects_path(rel)) as fh, pa.ipc.new_file(fh, s.rejects.schema) as w:
            w.write_table(s.rejects)
    schema = SCHEMA.with_metadata({"summary": json.dumps(s.meta)})
    table = pa.Table.from_arrays([column(s.summary[c], SCHEMA.field(c).type) for c in ds.COLUMNS], schema=schema)
    with root.open_write(rel) as fh, pa.ipc.new_file(fh, schema) as w:
        w.write_table(table)
    stem = posixpath.basename(rel).split(".")[0]
    same_rules = stem.rsplit("-", 1)[0] + "-"  # <day>-<rules>-: this file's earlier versions under these rules
    for old in root.fs.ls(root.path(SUMMARY_DIR), detail=False):  # no glob: no regex
        name = posixpath.basename(old)
        if name.startswith(same_rules) and name.split(".")[0] != stem:
            root.fs.rm(old)


def read_summary(root, rel: str) -> tuple[dict, dict]:
    """``(summary columns, meta)`` of a stored day summary (memory-mapped on a local data root)."""
    from include.online_time.compute_shard import read_shard

    table = read_shard(root, rel)
    meta = json.loads(table.schema.metadata[b"summary"])
    return {c: numpy_of(table.column(c)) for c in ds.COLUMNS}, meta


def _read(root, rel: str, day: date, path: str) -> DaySummary:
    from include.online_time.compute_shard import read_shard

    summary, meta = read_summary(root, rel)
    rejects = None
    if meta["rejects"]:
        rejects = read_shard(root, _rejects_path(rel))
        if rejects.column("file").to_pylist()[:1] != [path]:  # the same file, read from another place
            rejects = rejects.set_column(0, "file", string_column([path] * rejects.num_rows))
    return DaySummary(day, path, summary, meta, rejects, False, meta["out_of_day"])


def _finish(root, d: _DayParse, day: date, ident: dict, rel: str) -> DaySummary:
    """The parsed day as a ``DaySummary``, stored under ``rel`` when there is a data root."""
    summary, rej = d.summary(), d.tally.rejects()
    rules = d.rules
    meta = {"day": day.isoformat(), "file": d.path, **ident, "rows_in": d.tally.rows_in,
            "rows_parsed": d.tally.rows_parsed, "rejects": rej.num_rows, "out_of_day": d.outside,
            "users": len(summary["userid"]), "rules": [rules.min_gap, rules.timeout, rules.post_multiplier]}
    s = DaySummary(day, d.path, summary, meta, rej, True, d.outside)
    if root is not None:
        _write(root, rel, s)
    return s


def _stored(root, path: str, day: date, rules: core.Rules) -> tuple[DaySummary | None, dict, str]:
    """``(summary or None, identity, path of the summary)``: the stored summary of an unchanged file."""
    ident = file_identity(path)
    rel = summary_path(day, ident, rules)
    if root is not None and root.exists(rel):
        try:
            return _read(root, rel, day, path), ident, rel
        except (OSError, KeyError, ValueError, pa.ArrowInvalid) as exc:
            log.warning("summary %s unreadable (%s): parsing %s again", root.uri(rel), exc, path)
    return None, ident, rel


def load_many(root, files: list[tuple[str, date]], rules: core.Rules, block_bytes: int = STREAM_BLOCK_BYTES,
              threads: int | None = None) -> dict[str, DaySummary]:
    """``{path: DaySummary}`` of ``[(path, day)]``: stored summaries of unchanged files, the others parsed
    (in one stream of blocks, the next one parsed in a second thread when a core is free) and stored."""
    out, todo = {}, []
    for path, day in files:
        s, ident, rel = _stored(root, path, day, rules)
        if s is not None:
            out[path] = s
        else:
            todo.append((path, day, ident, rel))
    if not todo:
        return out
    gen = parsed_blocks([t[0] for t in todo], block_bytes)
    blocks = prefetch(gen, parse_threads() if threads is None else threads)
    current = [None, None]  # (index, _DayParse) of the file being read

    def finish_until(stop: int) -> None:  # every file before ``stop`` is read: summarise and store it
        for k in range(stop):
            path, day, ident, rel = todo[k]
            if path not in out:
                d = current[1] if current[0] == k else _DayParse(path, day, rules, block_bytes)  # empty file
                out[path] = _finish(root, d, day, ident, rel)

    try:
        for fi, p in blocks:
            if current[0] != fi:
                finish_until(fi)
                current[:] = [fi, _DayParse(todo[fi][0], todo[fi][1], rules, block_bytes, todo[fi][2]["size"])]
            current[1].add(p)
    finally:
        blocks.close()
        gen.close()
    finish_until(len(todo))
    return out


def load_or_parse(root, path: str, day: date, rules: core.Rules, block_bytes: int = STREAM_BLOCK_BYTES
                  ) -> DaySummary:
    """The day's summary from the data root when the file is unchanged, else parsed and stored."""
    return load_many(root, [(path, day)], rules, block_bytes)[path]


@dataclass
class SummaryCache:
    """Summaries of one run, so that its windows parse each day at most once."""

    root: object
    rules: core.Rules
    block_bytes: int = STREAM_BLOCK_BYTES
    days: dict = field(default_factory=dict)

    def load(self, files: list[str]) -> None:
        """Have every file's summary (``file_day`` from its name), parsing those without one."""
        todo = [(f, file_day(f)) for f in files if f not in self.days]
        self.days.update(load_many(self.root, todo, self.rules, self.block_bytes))

    def get(self, path: str, day: date) -> DaySummary:
        if path not in self.days:
            self.days.update(load_many(self.root, [(path, day)], self.rules, self.block_bytes))
        return self.days[path]

    def parsed(self) -> list[str]:
        return sorted(s.day.isoformat() for s in self.days.values() if s.parsed)

    def reused(self) -> list[str]:
        return sorted(s.day.isoformat() for s in self.days.values() if not s.parsed)


def file_day(path: str) -> date:
    """The day of a log file, from its name ``YYYY-MM-DD.log``."""
    return date.fromisoformat(posixpath.basename(path)[:10])


def window_summaries(cache: SummaryCache, files: list[str]) -> list[DaySummary] | None:
    """The summaries of ``files`` (parsing the days without one), or None when a file holds a time outside
    its day (the window then needs the full computation)."""
    cache.load(files)
    days = [cache.get(path, file_day(path)) for path in files]
    for s in days:
        if s.out_of_day:
            log.warning("%s holds %d time(s) outside %s: the full computation instead of day summaries",
                        s.file, s.out_of_day, s.day)
            return None
    return days


def stored_path(s: DaySummary, rules: core.Rules) -> str:
    """Where ``s`` is stored on the data root (its meta holds the file's identity)."""
    return summary_path(s.day, s.meta, rules)


def window_rows(days: list[DaySummary]) -> tuple[pa.Table | None, int, int]:
    """``(rejects, rows_in, rows_parsed)`` of the days' files, from their summaries (rejects None: none)."""
    parts = [d.rejects for d in days if d.rejects is not None and d.rejects.num_rows]
    return (pa.concat_tables(parts) if parts else None, sum(d.meta["rows_in"] for d in days),
            sum(d.meta["rows_parsed"] for d in days))


def combine_days(rules: core.Rules, days: list[tuple[date, dict]], end: date, window_days: int,
                 fast: bool | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(userid, online_seconds, sessions)`` of ``[(day, summary)]`` in day order, for the window ending ``end``
    (earlier days are lookback days); ``fast``: ``Combiner``'s."""
    first = core.epoch_day(end) - window_days + 1
    comb = ds.Combiner(rules, fast)
    for day, summary in days:
        comb.add(summary, core.epoch_day(day) * 86400, core.epoch_day(day) >= first)
    return comb.result()


def combine_window(cache: SummaryCache, files: list[str], end: date, window_days: int
                   ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], list[DaySummary]] | None:
    """The window's ``(userid, online_seconds, sessions)`` and its days' summaries, or None when a file
    holds a time outside its day (the caller then runs the full computation)."""
    days = window_summaries(cache, files)
    if days is None:
        return None
    return combine_days(cache.rules, [(s.day, s.summary) for s in days], end, window_days), days
