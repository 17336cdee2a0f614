"""Process helpers shared by the worker processes and the tasks: dying with the parent, giving freed memory
back, peak memory. Standard library and pyarrow only (imported by lean worker processes)."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile

_LIBC = None
STAGE_HEAP = (32 << 20, 64 << 20)  # the plays stages' M_MMAP_THRESHOLD and M_TRIM_THRESHOLD (``lean_memory``)
TIGHT_HEAP = (128 << 10, 128 << 10)  # glibc's first thresholds, kept: every large block handed back at once
SMALL_HEAP = (16 << 20, 16 << 20)  # between the two: most of STAGE_HEAP's saved page faults, little of its peak
SMALL_DAY_PLAYS = 2_000_000  # up to this many plays a day, pass 2, rollup and verify favour speed over their peak


def die_with_parent(parent: int) -> None:
    """Worker start-up: the kernel kills the worker when its parent dies (even by kill -9)."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: workers notice the broken pipe instead
        pass
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)


def lean_memory(heap: tuple[int, int] = STAGE_HEAP) -> None:
    """Make this process give freed memory back: Arrow allocates from the C heap (its default mimalloc pool
    keeps freed pages), and glibc returns the free parts of every heap arena (``malloc_trim``; the
    arenas of Arrow's and the Parquet writer's threads otherwise keep them). Called at the start of the plays
    stages, in the decoder processes, and after each chunk: without it a 5M-play ingest's main process grew
    to ~850 MiB, with it ~450 MiB (bench/README). Switching pools at run time does not reach the compute
    kernels' shared context once it has been used, so ``ARROW_DEFAULT_MEMORY_POOL=system`` is also set in
    the environment of every process (``scripts/env.sh``, ``docker-compose.yml``, the decoders). Blocks up to
    32 MiB then come from the heap and 64 MiB of free heap is kept (``STAGE_HEAP``): a stage's batch after batch
    of Arrow buffers otherwise each fault fresh pages in (a realistic 1M day's rollup and verify: 0.9M faults,
    0.3M with it; bench/README). ``heap``: other thresholds (``TIGHT_HEAP``: a stage whose peak matters more
    than its page faults; ``SMALL_HEAP``: in between)."""
    import gc

    import pyarrow as pa

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())
    gc.freeze()  # what is loaded so far (Airflow, pandas, ...) is not scanned by every collection of the stage
    reuse_heap(*heap)
    trim_heap()


def reuse_heap(mmap_threshold: int = 32 << 20, trim_threshold: int = 1 << 30) -> None:
    """Keep freed memory in this process for its next chunk (glibc ``mallopt``): blocks up to
    ``mmap_threshold`` come from the heap instead of fresh ``mmap`` s, and up to ``trim_threshold`` of free
    heap is kept. A process that handles chunk after chunk of the same size otherwise faults the same pages
    in again for every chunk: a realistic 1M-play ingest took 4.7M page faults (18 GB zeroed), 12 of its
    38 CPU-seconds in the kernel (bench/README). No-op without glibc."""
    libc = _libc()
    if libc:
        libc.mallopt(-3, mmap_threshold)  # M_MMAP_THRESHOLD (also turns off its dynamic adjustment)
        libc.mallopt(-1, trim_threshold)  # M_TRIM_THRESHOLD


@contextlib.contextmanager
def heap_reused():
    """``reuse_heap`` for the duration, then the stages' setting again (``STAGE_HEAP``) and the free memory
    handed back."""
    reuse_heap()
    try:
        yield
    finally:
        reuse_heap(*STAGE_HEAP)
        trim_heap()


def _libc():
    global _LIBC
    if _LIBC is None:
        try:
            import ctypes

            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim(0)
        except (OSError, AttributeError):
            _LIBC = False
    return _LIBC


def trim_heap() -> None:
    """``malloc_trim(0)``: hand the C heap's free memory back to the OS (glibc; a no-op elsewhere)."""
    libc = _libc()
    if libc:
        libc.malloc_trim(0)


def peak_rss_mb() -> float | None:
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss``, not inflated by the parent's
    pages a child shares between its fork and its exec)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a zombie counts: it may still be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


ONLINE_SPILL_PREFIX = "online-time-spill-"
INGEST_SPILL_PREFIX = "ingest-spill-"


def spill_dir(prefix: str, tag: str = "") -> str:
    """A new local temporary folder ``<prefix><pid>-<tag>…``, named after this process so that
    ``remove_stale_spill_dirs`` can tell when its owner is gone."""
    return tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-{tag}")


def remove_stale_spill_dirs(tmp_root: str | None = None,
                            prefixes: tuple[str, ...] = (ONLINE_SPILL_PREFIX, INGEST_SPILL_PREFIX)) -> list[str]:
    """Remove spill folders (``<prefix><pid>-…``) whose process is gone, e.g. after a kill -9; returns
    what was removed."""
    tmp_root = tmp_root or tempfile.gettempdir()
    removed = []
    for name in sorted(os.listdir(tmp_root)):
        prefix = next((p for p in prefixes if name.startswith(p)), None)
        if prefix is None:
            continue
        pid = name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(os.path.join(tmp_root, name), ignore_errors=True)
            removed.append(name)
    if removed:
        logging.getLogger(__name__).warning("removed %d stale spill folder(s) of dead runs in %s: %s",
                                            len(removed), tmp_root, removed)
    return removed
