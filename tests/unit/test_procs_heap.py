"""The plays stages keep freed memory for their next batch (``include.procs.STAGE_HEAP``)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import pytest

from include import procs


def _faults_of_a_fresh_block(mib: int = 16) -> int:
    """Minor page faults of allocating, filling and freeing a ``mib`` MiB block, a second time."""
    for _ in range(2):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = bytearray(mib << 20)
        block[::4096] = b"\x01" * len(range(0, mib << 20, 4096))  # a byte in every page
        del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(not procs._libc(), reason="glibc only")  # noqa: SLF001
def test_a_stage_after_the_ingests_chunk_loop_reuses_its_heap():
    """After ``heap_reused`` (pass 1) and in any stage (``lean_memory``), a 16 MiB block freed and allocated again
    comes from the heap, not from a fresh ``mmap`` whose 4,096 pages all fault in: glibc's defaults, which
    ``heap_reused`` used to restore, had turned the dynamic threshold off at 128 KiB (a 1M day's rollup and
    verify: 0.9M faults)."""
    with procs.heap_reused():
        pass
    assert _faults_of_a_fresh_block() < 1024
    procs.lean_memory()
    assert _faults_of_a_fresh_block() < 1024
    assert _faults_in_a_fresh_process("procs.reuse_heap(128 << 10, 128 << 10)") > 3000  # what the old exit left


def _faults_in_a_fresh_process(setup: str) -> int:
    """``_faults_of_a_fresh_block`` after ``setup`` in a new process: no free block that earlier tests left in
    this process's heap can serve the allocation, whatever the thresholds say (that made the check flaky)."""
    code = ("from include import procs\nfrom tests.unit.test_procs_heap import _faults_of_a_fresh_block\n"
            f"{setup}\nprint(_faults_of_a_fresh_block())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    return int(out.stdout.split()[-1])
