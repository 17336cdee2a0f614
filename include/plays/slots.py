"""Slot files: how a chunk's raw values (~48 MB for 20,000 realistic plays) pass from a decoder process to the
main process in ``ingest_plays`` pass 1. A few local files are written over chunk after chunk instead of a new
file a chunk: on a VM that hands freed pages back to its host, every page of a new file is allocated and
zeroed, and every page of a removed one freed again (``bench/README.md``, issue 24, twelfth round)."""

from __future__ import annotations

import os

import pyarrow as pa


def overwrite_ipc(path: str, tab: pa.Table) -> None:
    """``tab`` as the local Arrow file ``path``, written over what the file holds (then cut to its new length),
    not into a new file: a slot file's pages are reused chunk after chunk (``raw_slot``) instead of being
    freed and handed out again (about 0.4 CPU-s less on a realistic 1M day's 2.4 GB of raw values)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        with open(fd, "r+b", closefd=False) as fh:
            with pa.ipc.new_file(pa.PythonFile(fh, mode="w"), tab.schema) as w:
                w.write_table(tab)
            fh.flush()
            os.ftruncate(fd, fh.tell())
    finally:
        os.close(fd)


RAW_SLOTS_PER_DECODER = 2  # ``DecoderPool.map``'s depth: the chunks in flight per decoder
SLOT_REUSES = 8  # chunks per slot file before a new one (``raw_slot``)


def raw_slot(spill: str, i: int, slots: int) -> str:
    """Chunk ``i``'s raw-values file: one of ``slots`` files, reused in turn. Chunk ``i`` is handed out only once
    chunk ``i - slots`` has been taken (``DecoderPool.map`` with ``slots`` = decoders x depth, or one chunk at a
    time in-process), so its slot is free. After ``SLOT_REUSES`` chunks a slot moves to a new file and the taker
    removes the old one (``slot_retires``): a file kept dirty past the kernel's writeback age (30 s by default;
    a 5M day's pass 1 takes about a minute) would be written to disk again and again."""
    return os.path.join(spill, f"slot-{i % slots}.{i // (slots * SLOT_REUSES)}.raw")


def slot_retires(i: int, slots: int) -> bool:
    """Whether chunk ``i``'s slot file is used by no later chunk (it can go once the chunk is taken)."""
    return (i + slots) // (slots * SLOT_REUSES) != i // (slots * SLOT_REUSES)


def check_slot(tab: pa.Table, res: dict) -> pa.Table:
    """``tab``, read from chunk ``res["i"]``'s slot, when it holds that chunk (its row count and first key as the
    decoder reported them); else an error, never a wrong snapshot: a slot written over too early (a pool
    dispatching more chunks than slots) shows here."""
    rows, first = res["raw_rows"], res["raw_first"]
    if tab.num_rows != rows or (rows and tab.column("key")[0].as_py() != first):
        raise RuntimeError(f"ingest_plays: slot file {res['raw_path']} does not hold chunk {res['i']} "
                           f"({tab.num_rows} rows, expected {rows})")
    return tab
