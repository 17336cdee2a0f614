"""The data root's writes (issue 21): no litter after a killed writer, and a failed write names its file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from include.storage import HOST, DataRoot

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}"}

WRITER = textwrap.dedent("""
    import sys
    from include.storage import DataRoot

    root = DataRoot(sys.argv[1])
    with root.open_write("day", sys.argv[2]) as fh:
        fh.write(b"x" * (4 << 20))  # a 4 MiB partial file
        fh.flush()
        print("writing", flush=True)
        sys.stdin.read()  # until the test closes stdin (or kills us)
""")


def _writer(root: Path, name: str) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(root), name], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, env=ENV, text=True)
    assert p.stdout.readline() == "writing\n"
    return p


def _tmps(folder: Path) -> list[str]:
    return sorted(f.name for f in folder.iterdir() if f.name.endswith(".tmp"))


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write_a_live_ones_is_not(tmp_path):
    dead, live = _writer(tmp_path, "snapshot.bin"), _writer(tmp_path, "other.bin")
    try:
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        left = _tmps(tmp_path / "day")
        assert len(left) == 2 and all(f".{dead.pid}@{HOST}.tmp" in n or f".{live.pid}@{HOST}.tmp" in n for n in left)
        DataRoot(str(tmp_path)).write_json({"next": "run"}, "day", "report.json")
        assert [n for n in _tmps(tmp_path / "day") if f".{dead.pid}@" in n] == []
        assert len(_tmps(tmp_path / "day")) == 1  # the live writer's file is still being written
        live.stdin.close()
        assert live.wait() == 0
    finally:
        for p in (dead, live):
            if p.poll() is None:
                p.kill()
                p.wait()
    assert _tmps(tmp_path / "day") == []
    assert (tmp_path / "day" / "other.bin").stat().st_size == 4 << 20
    assert not (tmp_path / "day" / "snapshot.bin").exists()


def test_other_hosts_and_unnamed_temporary_files_are_removed_only_when_old(tmp_path):
    day = tmp_path / "day"
    day.mkdir()
    names = {"other_old": "a.parquet.0123456789ab.42@otherhost-1.tmp",
             "other_new": "b.parquet.0123456789ab.42@otherhost-1.tmp",
             "unnamed_old": "c.parquet.0123456789ab.tmp", "unnamed_new": "d.parquet.0123456789ab.tmp",
             "not_ours_old": "notes.tmp"}
    old = time.time() - 2 * 24 * 3600
    for key, name in names.items():
        (day / name).write_bytes(b"x")
        if key.endswith("old"):
            os.utime(day / name, (old, old))
    removed = DataRoot(str(tmp_path)).sweep_tmp("day")
    assert sorted(Path(p).name for p in removed) == sorted([names["other_old"], names["unnamed_old"]])
    assert _tmps(day) == sorted([names["other_new"], names["unnamed_new"], names["not_ours_old"]])


FULL = textwrap.dedent("""
    import resource, signal, sys
    import numpy as np
    import pyarrow as pa
    from include.storage import DataRoot

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, writes fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
    root = DataRoot(sys.argv[1])
    table = pa.table({"x": np.random.default_rng(0).random(100_000)})
    for write in (lambda: root.write_table(table, "day", "t.parquet"),
                  lambda: root.write_bytes(b"x" * 200_000, "day", "b.bin")):
        try:
            write()
        except OSError as exc:
            print(exc)
""")


def test_a_write_past_the_file_size_limit_names_its_file_and_leaves_nothing(tmp_path):
    out = subprocess.run([sys.executable, "-c", FULL, str(tmp_path)], env=ENV, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == [f"[Errno 27] File too large: '{tmp_path}/day/t.parquet'",
                   f"[Errno 27] File too large: '{tmp_path}/day/b.bin'"]
    assert list((tmp_path / "day").iterdir()) == []


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (needs mount rights: root in the development containers)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_a_full_disk_names_the_file_and_leaves_nothing(tiny_disk):
    import numpy as np
    import pyarrow as pa

    root = DataRoot(str(tiny_disk))
    table = pa.table({"x": np.random.default_rng(0).random(300_000)})  # 2.4 MB, no compression helps
    with pytest.raises(OSError) as err:
        root.write_table(table, "plays", "20140107", "plays.parquet")
    assert str(err.value) == f"[Errno 28] No space left on device: '{tiny_disk}/plays/20140107/plays.parquet'"
    with pytest.raises(OSError, match=r"^\[Errno 28\] No space left on device: '.*/big\.bin'$"):
        root.write_bytes(b"x" * (2 << 20), "big.bin")
    assert [p.name for p in tiny_disk.rglob("*") if p.is_file()] == []


STREAM_WRITER = textwrap.dedent("""
    import sys
    import pyarrow as pa
    from include.plays.store import ParquetStream
    from include.storage import DataRoot

    schema = pa.schema([("k", pa.string())])
    stream = ParquetStream(DataRoot(sys.argv[1]), "day/plays_raw.parquet", schema)
    stream.write(pa.table({"k": ["x" * 1000] * 4000}, schema=schema))
    print("writing", flush=True)
    sys.stdin.read()
""")


def test_a_killed_parquet_streams_partial_file_is_swept_by_the_next_stream(tmp_path):
    """The snapshot's ParquetStream names its temporary file after its writer, so a run killed mid-snapshot
    leaves nothing for good: the next stream into that folder removes it."""
    import pyarrow as pa

    from include.plays.store import ParquetStream

    p = subprocess.Popen([sys.executable, "-c", STREAM_WRITER, str(tmp_path)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, env=ENV, text=True)
    try:
        assert p.stdout.readline() == "writing\n"
        p.send_signal(signal.SIGKILL)
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert [n for n in _tmps(tmp_path / "day") if f".{p.pid}@{HOST}.tmp" in n]
    schema = pa.schema([("k", pa.string())])
    with ParquetStream(DataRoot(str(tmp_path)), "day/plays_raw.parquet", schema) as stream:
        stream.write(pa.table({"k": ["y"]}, schema=schema))
    assert _tmps(tmp_path / "day") == []
    assert (tmp_path / "day" / "plays_raw.parquet").exists()


JSON_LEAF = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text() |
             st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([-0.0, 5e-324, 1e16, 0.1 + 0.2, 1e308]))
JSON_DOC = st.recursive(JSON_LEAF, lambda inner: st.lists(inner, max_size=4) |
                        st.dictionaries(st.text(max_size=8) | st.integers(-5, 5), inner, max_size=4), max_leaves=30)


def _same(a, b) -> bool:
    """Equal, floats bit for bit (``-0.0`` is not ``0.0``, ``NaN`` is ``NaN``), keys in the same order."""
    import math

    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return math.copysign(1, a) == math.copysign(1, b) and (a == b or (math.isnan(a) and math.isnan(b)))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


@settings(max_examples=400, deadline=None)
@given(row=st.dictionaries(st.text(max_size=8), JSON_DOC, max_size=5))
def test_a_jsonl_line_reads_back_as_json_dumps_gives_it(row):
    """``write_jsonl``'s lines (``ujson``) read back exactly as ``json.dumps``'s did: floats to the bit, NaN and
    infinities, huge ints, lone surrogates, control characters, non-string keys, one line each."""
    import json

    from include.storage import jsonl_line

    line = jsonl_line(row)
    assert "\n" not in line and line.isascii()
    assert _same(json.loads(line), json.loads(json.dumps(row)))


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.dictionaries(st.text(max_size=8), JSON_DOC, max_size=5), max_size=6))
def test_json_lines_read_back_as_json_reads_each_line(rows):
    """``read_jsonl`` (msgspec, or ``json`` for what msgspec refuses) gives each written line as ``json.loads``
    does, whatever a line holds (NaN and infinities, huge ints, lone surrogates) and whatever its neighbours."""
    import json

    from include.storage import jsonl_line, jsonl_rows

    data = "".join(jsonl_line(r) + "\n" for r in rows).encode()
    got = jsonl_rows(data)
    assert len(got) == len(rows)
    assert all(_same(g, json.loads(json.dumps(r))) for g, r in zip(got, rows, strict=True))
