"""Streamed ingest (issue 10): any chunk size, with or without worker processes, gives the very same
files as one chunk: play ids, quarantine, contributions (bit for bit), documents; re-runs too."""

from __future__ import annotations

import os

import pytest

import include.plays.decoders as decode_mod
from include.plays.documents import play_documents, play_frame
from include.plays.ingest_plays import ingest_plays
from include.plays.rollup_videos import rollup_day
from include.sample_plays import generate_plays
from include.storage import DataRoot
from tests.support.plays import GOOD_S, categories, mysql_hook, put_play
from video_analytics.conventions import endlist_key, plays_path

DAY = "20140107"
CONFIGS = [(10**6, 0), (1, 0), (3, 0), (3, 2), (7, 2)]  # (chunk, workers): the first is one chunk
TABLES = ["plays.parquet", "allocation.parquet", "quarantine.parquet", "segments.parquet", "kids.parquet",
          "snapshot/plays_raw.parquet", "snapshot/endlist.parquet",
          *(f"contrib/{k}.parquet" for k in ("vid", "vid_region", "vid_seg", "uid", "uid_region", "kid",
                                             "kid_region"))]


def _day(r, mysql_db):
    """A small day with every hard case: vids spanning chunks, duplicates, malformed plays, a vid whose
    category is not a usable name (bad_kid), a text field holding a number (stored JSON-encoded)."""
    hook = mysql_hook(mysql_db)
    generate_plays(r, hook, DAY, plays=120, vids=6, seed=3, bad_rate=0.05, dup_rate=0.05)
    categories(mysql_db, [("1000002", 99)], [(99, "bad.kid")])
    put_play(r, DAY, "1000001_x1", s={**GOOD_S, "os": 7})
    put_play(r, DAY, "1000001_x2", raw_s="{not json")
    r.rpush(endlist_key(DAY), "1000001_x1")
    return hook


def _files(root: DataRoot) -> dict:
    out = {t: root.read_table(plays_path(DAY, *t.split("/"))).to_pylist() for t in TABLES}
    for k in ("vdaily", "daily", "type"):
        out[k] = root.read_jsonl(plays_path(DAY, "docs", f"{k}.jsonl"))
    out["play"] = list(play_documents(play_frame(root, DAY)))
    return out


def _run(r, hook, root, chunk, workers):
    rep = ingest_plays(root, r, hook, DAY, chunk=chunk, workers=workers)
    rollup_day(root, DAY)
    return rep


def _restore(r, snap):
    r.flushdb()
    for k, v in snap.items():
        r.restore(k, 0, v)


def test_any_chunk_size_gives_the_same_files(redis_db, mysql_db, tmp_path, monkeypatch):
    hook = _day(redis_db, mysql_db)
    snap = {k: redis_db.dump(k) for k in redis_db.keys("*")}
    results = []
    for i, (chunk, workers) in enumerate(CONFIGS):
        _restore(redis_db, snap)
        root = DataRoot(str(tmp_path / f"r{i}"))
        # segment sums merged after every chunk in one configuration, never in the others
        monkeypatch.setattr(decode_mod, "SEG_COMPACT_ROWS", 1 if (chunk, workers) == (3, 0) else 10**9)
        monkeypatch.setattr(decode_mod, "SEG_MAX_CELLS", 0 if (chunk, workers) == (3, 0) else 1 << 25)  # sparse
        rep = _run(redis_db, hook, root, chunk, workers)
        results.append((rep, _files(root)))
    rep0, files0 = results[0]
    assert rep0["quarantine_reasons"].get("bad_kid", 0) > 0 and rep0["duplicates"] > 0
    assert any(c.endswith("__json") for c in files0["plays.parquet"][0])
    assert rep0["chunks"] == 1
    for (chunk, workers), (rep, files) in zip(CONFIGS[1:], results[1:], strict=True):
        assert rep["chunks"] > 1 and rep["decoder_processes"] == workers
        for k in ("unique", "duplicates", "ingested", "quarantined", "quarantine_reasons", "new_play_ids"):
            assert rep[k] == rep0[k], (chunk, workers, k)
        for name in files0:
            assert files[name] == files0[name], (chunk, workers, name)


def test_the_vid_seg_contribution_is_a_copy_of_the_segments(redis_db, mysql_db, tmp_path):
    """The day's ``vid_seg`` contribution (17.5M rows on a realistic 5M day) is ``segments.parquet`` copied byte
    for byte, never read into a frame: the same rows, in the same row groups (vid ranges)."""
    import pyarrow.parquet as pq

    from include.plays.store import ParquetStream
    from video_analytics.play_decode import SEG_SCHEMA

    hook = _day(redis_db, mysql_db)
    root = DataRoot(str(tmp_path / "root"))
    ingest_plays(root, redis_db, hook, DAY, chunk=7, workers=0)
    rel = plays_path(DAY, "segments.parquet")
    segs = root.read_table(rel)
    with ParquetStream(root, rel, SEG_SCHEMA) as out:  # as a day of many vid blocks has it
        for i in range(0, segs.num_rows, 500):
            out.write(segs.slice(i, 500))
    rollup_day(root, DAY)
    got = root.read_table(plays_path(DAY, "contrib", "vid_seg.parquet"))
    assert got.num_rows == segs.num_rows > 1000
    assert got.cast(SEG_SCHEMA).equals(segs)
    groups = [pq.ParquetFile(root.path(r)).metadata.num_row_groups
              for r in (rel, plays_path(DAY, "contrib", "vid_seg.parquet"))]
    assert groups[0] == groups[1] == -(-segs.num_rows // 500)
    assert root.read_bytes(plays_path(DAY, "contrib", "vid_seg.parquet")) == root.read_bytes(rel)


@pytest.mark.parametrize("chunk,workers", [(2, 0), (3, 2)])
def test_a_rerun_across_chunks_keeps_ids_and_unions(redis_db, mysql_db, tmp_path, chunk, workers):
    """Half the day, then the rest arrives (with repeats): ids of the first run are kept, new keys get
    the next ids in T_endlist_D order, exactly as with one chunk."""
    hook = _day(redis_db, mysql_db)
    full = redis_db.lrange(endlist_key(DAY), 0, -1)
    snap = {k: redis_db.dump(k) for k in redis_db.keys("*")}
    out = []
    for i, (c, w) in enumerate([(10**6, 0), (chunk, workers)]):
        _restore(redis_db, snap)
        redis_db.delete(endlist_key(DAY))
        redis_db.rpush(endlist_key(DAY), *full[: len(full) // 2])
        root = DataRoot(str(tmp_path / f"r{i}"))
        _run(redis_db, hook, root, c, w)
        first = {a["key"]: a["playid"] for a in root.read_table(plays_path(DAY, "allocation.parquet")).to_pylist()}
        redis_db.rpush(endlist_key(DAY), *full[len(full) // 2:], *full[:5])
        rep = _run(redis_db, hook, root, c, w)
        again = {a["key"]: a["playid"] for a in root.read_table(plays_path(DAY, "allocation.parquet")).to_pylist()}
        assert {k: again[k] for k in first} == first
        assert rep["new_play_ids"] == len(again) - len(first) > 0
        out.append(_files(root))
    for name in out[0]:
        assert out[1][name] == out[0][name], name


def test_plays_stages_give_freed_memory_back():
    """``lean_memory`` moves Arrow to the C heap, whose free memory ``trim_heap`` returns (5M-play memory)."""
    import pyarrow as pa

    from include.procs import lean_memory, trim_heap

    lean_memory()
    assert pa.default_memory_pool().backend_name == "system"
    trim_heap()  # callable again, and a no-op where there is no glibc


def _jobs(spill: str, n: int) -> list[dict]:
    import ujson

    s = ujson.dumps(GOOD_S).encode()
    from include.plays.slots import raw_slot

    return [{"i": i, "start": i, "keys": [f"100000{i}_a"], "raw": ([s], [b"[[1,2],[2,1]]"], [None]), "day": DAY,
             "spill": spill, "raw_path": raw_slot(spill, i, 4), "old_id": None, "batch": 10} for i in range(n)]


def test_chunks_reach_the_snapshot_through_reused_slots_in_order(redis_db, mysql_db, tmp_path, monkeypatch):
    """Many more chunks than slot files (2 decoders x 2 in flight): each chunk's raw values are read from its
    slot before a later chunk writes over it, so the snapshot holds every key once, in the day's order, with
    the values Redis holds; one chunk at a time in-process uses one slot. A slot moves to a new file every
    ``SLOT_REUSES`` chunks and the old one is removed once taken: never more files than slots."""
    import include.plays.ingest_decode as idec
    from include.plays.slots import SLOT_REUSES

    hook = _day(redis_db, mysql_db)
    order = list(dict.fromkeys(k.decode() if isinstance(k, bytes) else k for k in redis_db.lrange(endlist_key(DAY), 0, -1)))
    for workers, slots in ((2, 4), (0, 1)):
        seen: list[tuple[int, str]] = []
        files: list[int] = []
        real = idec._take

        def spy(run, res, snap, quar, real=real, seen=seen, files=files):
            seen.append((res["i"], os.path.basename(res["raw_path"])))
            real(run, res, snap, quar)
            files.append(sum(f.endswith(".raw") for f in os.listdir(run.spill)))

        monkeypatch.setattr(idec, "_take", spy)
        root = DataRoot(str(tmp_path / f"w{workers}"))
        ingest_plays(root, redis_db, hook, DAY, chunk=2, workers=workers)
        assert [i for i, _ in seen] == list(range(len(seen))) and len(seen) > slots * SLOT_REUSES
        assert all(name == f"slot-{i % slots}.{i // (slots * SLOT_REUSES)}.raw" for i, name in seen)
        assert 0 < max(files) <= slots
        snap = root.read_table(plays_path(DAY, "snapshot", "plays_raw.parquet"))
        assert snap.column("key").to_pylist() == order
        j = redis_db.mget([k + "_J" for k in order])
        assert [v.decode() if isinstance(v, bytes) else v for v in snap.column("J").to_pylist()] == \
            [v.decode() if isinstance(v, bytes) else v for v in j]


def test_a_slot_written_over_too_early_is_an_error_not_a_wrong_snapshot(tmp_path):
    """The taker checks that a slot holds the chunk the decoder reported (rows and first key): a slot written
    over by a later chunk before it was taken raises, naming the file."""
    import pyarrow as pa

    from include.plays.decoders import RAW_SCHEMA
    from include.plays.slots import check_slot, overwrite_ipc, raw_slot

    def chunk(keys):
        n = len(keys)
        return pa.table([pa.array(keys), pa.array([b"{}"] * n, pa.binary()), pa.array([b"[]"] * n, pa.binary()),
                         pa.array([None] * n, pa.binary())], schema=RAW_SCHEMA)

    path = raw_slot(str(tmp_path), 0, 4)
    overwrite_ipc(path, chunk(["1000001_a", "1000001_b"]))
    res = {"i": 0, "raw_path": path, "raw_rows": 2, "raw_first": "1000001_a"}
    from include.plays.decoders import read_ipc as read

    assert check_slot(read(path), res).num_rows == 2
    overwrite_ipc(path, chunk(["1000004_x", "1000004_y"]))  # chunk 4, same slot, before chunk 0 was taken
    with pytest.raises(RuntimeError, match="does not hold chunk 0"):
        check_slot(read(path), res)
    overwrite_ipc(path, chunk(["1000001_a"]))
    with pytest.raises(RuntimeError, match=path.split("/")[-1]):
        check_slot(read(path), res)


def test_a_raw_slot_written_over_holds_only_its_new_chunk(tmp_path):
    """A slot file written over with a smaller chunk reads back as that chunk alone: the file is cut to its new
    length, and no byte of the earlier, larger chunk is read as part of it."""
    import pyarrow as pa

    from include.plays.decoders import RAW_SCHEMA, read_ipc
    from include.plays.slots import overwrite_ipc, raw_slot

    def chunk(n, fill):
        return pa.table([pa.array([f"100000{i % 10}_{i}" for i in range(n)]), pa.array([fill * 50] * n, pa.binary()),
                         pa.array([b"[[1,1]]"] * n, pa.binary()), pa.array([None] * n, pa.binary())], schema=RAW_SCHEMA)

    path = raw_slot(str(tmp_path), 9, 4)
    assert path == raw_slot(str(tmp_path), 1, 4) != raw_slot(str(tmp_path), 2, 4)
    big, small = chunk(5000, b"x"), chunk(3, b"y")
    overwrite_ipc(path, big)
    size_big = os.path.getsize(path)
    overwrite_ipc(path, small)
    assert os.path.getsize(path) < size_big
    assert read_ipc(path).equals(small) and read_ipc(path, mapped=False).equals(small)
    overwrite_ipc(path, big)
    assert read_ipc(path).equals(big)


def test_decoders_are_lean_processes_answering_in_order(tmp_path):
    """Decoder processes start as ``python -P -m include.plays.decoders``: no pandas (nor the parent's
    ``__main__``) loaded, before or after decoding (pyarrow would import it), Arrow on the C heap; results
    come back in job order over any number of jobs."""
    from pathlib import Path

    from include.plays.decoders import DecoderPool

    def lean(pool):
        for p in pool.procs:
            maps = Path(f"/proc/{p.pid}/maps").read_text()
            assert "pyarrow" in maps and "/pandas/" not in maps, p.pid

    with DecoderPool(2) as pool:
        assert pool.pools == ["system", "system"]
        lean(pool)
        out = list(pool.map(_jobs(str(tmp_path), 9), depth=2))
        lean(pool)
        procs = list(pool.procs)
    assert [o["i"] for o in out] == list(range(9))
    assert all(o["plays"] == 1 and o["quarantined"] == 0 for o in out)
    assert all(p.returncode == 0 for p in procs)  # told to stop at the end, and stopped


@pytest.mark.parametrize("chunk", [7, 10**6])
def test_decoders_start_before_the_keys_are_read(redis_db, mysql_db, tmp_path, monkeypatch, chunk):
    """The decoder processes are launched before ``T_endlist_D`` is read (their start-up overlaps it); a day
    of one chunk, which decodes in-process, stops them at once; either way none is left running."""
    import include.plays.ingest_plays as ip

    seen = []
    real = ip.day_keys

    def spy(run):
        seen.append(list(run.pool.procs))
        assert all(p.poll() is None for p in run.pool.procs)
        return real(run)

    monkeypatch.setattr(ip, "day_keys", spy)
    hook = _day(redis_db, mysql_db)
    rep = ingest_plays(DataRoot(str(tmp_path / "root")), redis_db, hook, DAY, chunk=chunk, workers=2)
    assert len(seen) == 1 and len(seen[0]) == 2
    assert all(p.poll() is not None for p in seen[0])
    assert rep["decoder_processes"] == (2 if chunk == 7 else 0)


def test_decoders_import_the_parents_modules_whatever_the_working_folder(tmp_path, monkeypatch):
    """``python -m`` puts the working folder first on ``sys.path``: run from another checkout (or any folder with an
    ``include`` package), the decoders would run its code, not the parent's. They start with ``-P``."""
    from include.plays.decoders import DecoderPool

    (tmp_path / "include" / "plays").mkdir(parents=True)
    (tmp_path / "include" / "__init__.py").write_text("raise SystemExit('the working folder was imported')\n")
    (tmp_path / "include" / "plays" / "__init__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    spill = tmp_path / "spill"
    spill.mkdir()
    with DecoderPool(2) as pool:
        out = list(pool.map(_jobs(str(spill), 2)))
    assert [o["plays"] for o in out] == [1, 1]


def test_a_dead_decoder_is_an_error_naming_it(tmp_path):
    from include.plays.decoders import DecoderError, DecoderPool

    with pytest.raises(DecoderError, match=r"decoder process \d+ exited"), DecoderPool(2) as pool:
        pool.procs[1].kill()
        pool.procs[1].wait()
        list(pool.map(_jobs(str(tmp_path), 4)))
    assert all(p.poll() is not None for p in pool.procs)


def test_a_decoders_exception_is_raised_in_the_parent(tmp_path):
    """An error inside a decoder reaches the caller as itself (here: the spill folder is gone)."""
    from include.plays.decoders import DecoderPool

    with pytest.raises(FileNotFoundError), DecoderPool(2) as pool:
        list(pool.map(_jobs(str(tmp_path / "missing"), 3)))


def test_the_days_segment_sums_are_made_once(redis_db, mysql_db, tmp_path, monkeypatch):
    """The day's per-(vid, segment) sums come out of pass 1 summed and sorted; the ingest writes them as they
    are, not summed a second time (on a realistic 5M day that copied 17.5M rows several times over)."""
    import video_analytics.play_fast as pf

    calls = []
    real = pf.sum_segment_tables

    def counted(parts):
        calls.append(sum(p.num_rows for p in parts))
        return real(parts)

    monkeypatch.setattr(pf, "sum_segment_tables", counted)
    monkeypatch.setattr(decode_mod, "sum_segment_tables", counted, raising=False)
    hook = _day(redis_db, mysql_db)
    root = DataRoot(str(tmp_path / "root"))
    ingest_plays(root, redis_db, hook, DAY, chunk=7, workers=0)
    assert calls == []  # the dense per-vid blocks: no sparse fallback, no second sum
    segs = root.read_table(plays_path(DAY, "segments.parquet"))
    assert segs.num_rows and segs.equals(real([segs]))  # one row per (vid, segment), sorted


def test_a_rerun_decodes_the_earlier_snapshot_in_decoder_processes(redis_db, mysql_db, tmp_path, monkeypatch):
    """A re-run whose keys are all archived still uses the decoder processes (it decoded 1M plays on one core
    before), and hands them each earlier-snapshot batch as the chunk's raw file: no raw value is pickled
    through a decoder's pipe. The day's files are the first run's."""
    sent = []
    real_send = decode_mod._send

    def send(fh, obj):
        if isinstance(obj, dict) and "keys" in obj:
            sent.append(obj)
        real_send(fh, obj)

    monkeypatch.setattr(decode_mod, "_send", send)
    hook = _day(redis_db, mysql_db)
    root = DataRoot(str(tmp_path / "root"))
    _run(redis_db, hook, root, 7, 2)
    first = _files(root)
    sent.clear()
    rep = _run(redis_db, hook, root, 7, 2)
    assert rep["new_keys"] == 0 and rep["chunks"] > 1 and rep["decoder_processes"] == 2
    assert sent and all(job["raw"] is None and job["keys"] is None and job["raw_file"] for job in sent)
    assert _files(root) == first


def test_segments_are_merged_alongside_pass_2(redis_db, mysql_db, tmp_path, monkeypatch):
    """The ingest's two independent halves after the ids run at once (a realistic 1M day: ~1.2 s of wall time):
    the segment sums' merge starts before pass 2 ends; each half waits here for the other to have started,
    which a sequential order would never let happen. The files are those of the one-chunk run."""
    import threading

    import include.plays.ingest_plays as ip

    def meet(first, wait_for, flag):
        def run(*args, **kwargs):
            flag.set()
            assert wait_for.wait(20), f"{first.__name__} ran alone"
            return first(*args, **kwargs)
        return run

    flags = [threading.Event() for _ in range(2)]
    monkeypatch.setattr(ip, "_write_segments", meet(ip._write_segments, flags[1], flags[0]))
    monkeypatch.setattr(ip, "pass2", meet(ip.pass2, flags[0], flags[1]))
    hook = _day(redis_db, mysql_db)
    snap = {k: redis_db.dump(k) for k in redis_db.keys("*")}
    root = DataRoot(str(tmp_path / "root"))
    _run(redis_db, hook, root, 7, 2)
    assert all(f.is_set() for f in flags)
    got = _files(root)
    monkeypatch.undo()
    _restore(redis_db, snap)
    one = DataRoot(str(tmp_path / "one"))
    _run(redis_db, hook, one, 10**6, 0)
    assert got == _files(one)
