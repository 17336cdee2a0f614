"""Decoder processes of ``ingest_plays`` pass 1 (``decode_chunk``), and the pool that runs them.

A decoder is ``python -P -m include.plays.decoders``: a plain child process that imports only the standard
library, NumPy, pyarrow, msgspec, ujson, redis and ``video_analytics.play_decode`` (about 70 MiB, against
some 200 MiB for a ``multiprocessing`` spawn child, which imports the parent's ``__main__`` again: under
Airflow that is the ``airflow`` command). Jobs and results are pickled dicts, length-prefixed, on the
child's stdin and a copy of its stdout (its own stdout goes to stderr, so a stray print cannot corrupt the
stream); the chunk's data go through files in the spill folder. The kernel kills a decoder when its parent
dies (``PR_SET_PDEATHSIG``), and a decoder exits at the end of its input.
"""

from __future__ import annotations

import collections
import gc
import json
import logging
import os
import pickle
import queue
import select
import struct
import subprocess
import sys
import threading
import traceback

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from include.plays.slots import RAW_SLOTS_PER_DECODER, overwrite_ipc
from include.procs import die_with_parent, lean_memory, peak_rss_mb, reuse_heap, trim_heap
from video_analytics.play_decode import TEXT_DOC_FIELDS, decode_columns, factorize, segment_sums
from video_analytics.play_fast import SegmentSums

log = logging.getLogger(__name__)

RAW_SCHEMA = pa.schema([("key", pa.string()), ("S", pa.binary()), ("J", pa.binary()), ("z1", pa.binary())])
QUARANTINE_SCHEMA = pa.schema([("key", pa.string()), ("reason", pa.string()), ("S", pa.binary()),
                               ("J", pa.binary()), ("z1", pa.binary())])


class Counter:
    """Counts Redis round trips."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, result=None):
        self.n += 1
        return result


def fetch_plays(raw, keys: list[str], batch: int, rt: Counter) -> list:
    """``K_S``/``K_J``/``K_z1`` of ``keys`` as Arrow ``binary`` arrays (``include.plays.mget``)."""
    from include.plays.mget import fetch_arrays

    return fetch_arrays(raw, keys, batch, rt)


def _text_columns(cols: dict) -> tuple[dict[str, pa.Array], set[str]]:
    """The play-document text columns as Arrow strings; a column with a non-string value (a number, as the
    legacy job took them) becomes ``<col>__json`` (JSON per value). Returns the arrays and those columns."""
    out: dict[str, pa.Array] = {}
    mixed: set[str] = set()
    for c in TEXT_DOC_FIELDS.values():
        vals = cols[c]
        if isinstance(vals, pa.Array):  # from the C reader: text already
            out[c] = vals
            continue
        try:
            out[c] = pa.array(vals, type=pa.string())
        except (pa.ArrowTypeError, pa.ArrowInvalid, TypeError):
            out[c + "__json"] = pa.array([json.dumps(v) for v in vals], type=pa.string())
            mixed.add(c)
    return out, mixed


def _arrow(values) -> pa.Array:
    """A text column (a list, or an Arrow array from the C reader) as an Arrow string array."""
    return values if isinstance(values, pa.Array) else pa.array(values, pa.string())


def write_ipc(path: str, tab: pa.Table) -> None:
    with pa.OSFile(path, "wb") as fh, pa.ipc.new_file(fh, tab.schema) as w:
        w.write_table(tab)


def read_ipc(path: str, mapped: bool = True) -> pa.Table:
    """A local Arrow file: memory-mapped (pages stay resident while the table lives), or read into memory."""
    with (pa.memory_map(path) if mapped else pa.OSFile(path, "rb")) as fh:
        return pa.ipc.open_file(fh).read_all()


SEG_MAX_CELLS = 1 << 25  # a decoder's sums in dense per-vid blocks up to this many cells (256 MiB), else sparse
SEG_COMPACT_ROWS = 500_000  # sparse: parts merged once the new rows outgrow the merged ones
SUMS_BATCH = 1 << 20  # rows per record batch of a decoder's sums file

def iter_ipc_batches(path: str):
    """A local Arrow file's record batches, one at a time (read, not mapped: memory is one batch)."""
    with pa.OSFile(path, "rb") as fh:
        reader = pa.ipc.open_file(fh)
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)


_WORKER_CLIENT: dict = {}
_SUMS: dict = {}  # a decoder's running per-(vid, segment) sums, by spill folder (one ingest at a time)
_IN_DECODER = False  # a decoder process keeps its chunk memory for the next chunk (``reuse_heap``)


def _worker_client(spec):
    key = repr(spec)
    if key not in _WORKER_CLIENT:
        import redis as redis_mod

        cls, kwargs = spec
        _WORKER_CLIENT.clear()
        _WORKER_CLIENT[key] = redis_mod.Redis(connection_pool=redis_mod.ConnectionPool(connection_class=cls, **kwargs))
    return _WORKER_CLIENT[key]


def new_sums() -> SegmentSums:
    return SegmentSums(SEG_MAX_CELLS, SEG_COMPACT_ROWS)


def _process_sums(spill: str) -> SegmentSums:
    if spill not in _SUMS:
        _SUMS.clear()
        _SUMS[spill] = new_sums()
    return _SUMS[spill]


def write_sums(sums: SegmentSums, path: str) -> dict:
    """The sums as a local Arrow file (sorted by vid and segment, in record batches of at most about
    ``SUMS_BATCH`` rows, made one by one)."""
    from video_analytics.play_decode import SEG_SCHEMA

    trim_heap()  # the chunks' memory, kept for the next chunk until now
    rows = 0
    with pa.OSFile(path, "wb") as fh, pa.ipc.new_file(fh, SEG_SCHEMA) as w:
        for tab in sums.tables(SUMS_BATCH):
            w.write_table(tab)
            rows += tab.num_rows
    return {"path": path, "rows": rows, "peak_rss_mb": peak_rss_mb()}


def finish_sums(job: dict) -> dict:
    """A decoder's last job: its sums of every chunk it decoded, to ``job["path"]``."""
    return write_sums(_SUMS.pop(job["spill"], None) or new_sums(), job["path"])


def decode_chunk(job: dict, client=None, sums: SegmentSums | None = None) -> dict:
    """One chunk of pass 1 (in a worker process, or in-process): fetch the raw values when neither given nor
    in the chunk's raw file already (``raw_file``), decode, and write its raw file (``raw_path``: snapshot rows),
    ``<i>.bad`` (quarantined) and ``<i>.arrow`` (plays, ``_pid`` = an earlier allocation's id, or minus the
    play's rank among the vid's new plays of the chunk) into the spill folder; its per (vid, segment) sums are
    added to ``sums`` (in a decoder: the process's own, written by ``finish_sums``). Returns the chunk's small
    aggregates."""
    if not _IN_DECODER:
        trim_heap()
    rt = Counter()
    keys, raw = job["keys"], job.get("raw")
    base = os.path.join(job["spill"], f"{job['i']:06d}")
    raw_path = job["raw_path"]
    if job.get("raw_file"):  # the chunk's rows are its raw file already (an earlier snapshot's batch)
        given = read_ipc(raw_path)
        keys, cols = given.column("key").to_pylist(), [given.column(c) for c in ("S", "J", "z1")]
        del given
    else:
        if raw is None:
            raw = fetch_plays(client if client is not None else _worker_client(job["redis"]), keys, job["batch"], rt)
        cols = [a if isinstance(a, pa.Array | pa.ChunkedArray) else pa.array(a, pa.binary()) for a in raw]
        overwrite_ipc(raw_path, pa.table([pa.array(keys, pa.string()), *cols], schema=RAW_SCHEMA))
    raw_rows, raw_first = len(keys), (keys[0] if keys else None)  # checked by the taker (``slots.check_slot``)
    s_raw, j_raw, z_raw = cols  # read in place by the C readers (``play_arrow``)
    del cols
    dec = decode_columns(keys, s_raw, j_raw, z_raw)
    del keys, raw, s_raw, j_raw, z_raw
    c, q = dec.columns, dec.quarantine
    n_plays = len(dec.pos)
    out = {"i": job["i"], "raw_path": raw_path, "raw_rows": raw_rows, "raw_first": raw_first, "round_trips": rt.n,
           "peak_rss_mb": None, "distinct_j": len(dec.segtab.htmap), "quarantined": len(q["key"]), "reasons": {},
           "vids": [], "new_counts": {}, "mixed": set(), "plays": n_plays}
    if q["key"]:
        write_ipc(base + ".bad", pa.table([pa.array(q[f.name], f.type) for f in QUARANTINE_SCHEMA],
                                           schema=QUARANTINE_SCHEMA))
        reasons, counts = np.unique(np.asarray(q["reason"], dtype=object), return_counts=True)
        out["reasons"] = {str(r): int(k) for r, k in zip(reasons, counts, strict=True)}
    if not n_plays:
        return out
    acc = sums if sums is not None else _process_sums(job["spill"])
    if not acc.add_plays(c["vid"], c["jcode"], dec.segtab):
        acc.add(segment_sums(c["vid"], c["jcode"], dec.segtab))
    vcode, vids = factorize(c["vid"])
    out["vids"] = list(vids)
    old = job["old_id"]
    pid = old[dec.pos].copy() if old is not None else np.zeros(n_plays, dtype=np.int64)
    new = pid == 0
    if new.any():
        nv = vcode[new]
        order = np.argsort(nv, kind="stable")  # rank of each new play among its vid's new plays, in order
        sv = nv[order]
        first = np.concatenate(([0], np.flatnonzero(np.diff(sv)) + 1))
        rank = np.arange(len(sv)) - np.repeat(first, np.diff(np.append(first, len(sv))))
        ranks = np.empty(len(nv), dtype=np.int64)
        ranks[order] = rank
        pid[new] = -(ranks + 1)
        counts = np.diff(np.append(first, len(sv)))
        out["new_counts"] = {str(vids[v]): int(k) for v, k in zip(sv[first].tolist(), counts.tolist(), strict=True)}
    text, out["mixed"] = _text_columns(c)
    vid_a = pa.array(c["vid"], pa.string())
    cols = {"pos": pa.array(dec.pos + job["start"]), "key": pa.array(c["key"], pa.string()), "vid": vid_a,
            "region": _arrow(c["region"]), "ipkey": _arrow(c["ipkey"]),
            "uid": pc.utf8_slice_codeunits(vid_a, 0, 4), "flow": pa.array(c["flow"]),
            "comprate": pa.array(c["comprate"]), **text, "Htmap": pa.array(c["Htmap"], pa.string()),
            "zz_uinfo": _arrow(c["zz_uinfo"]), "_pid": pa.array(pid)}
    write_ipc(base + ".arrow", pa.table(cols))
    out["peak_rss_mb"] = peak_rss_mb()
    return out


_PLAIN_KWARGS = {"host", "port", "path", "db", "username", "password", "client_name", "socket_timeout",
                 "socket_connect_timeout", "socket_keepalive", "encoding", "encoding_errors", "decode_responses",
                 "protocol", "health_check_interval", "retry_on_timeout"}


def client_spec(raw) -> tuple:
    """The picklable ``(connection class, settings)`` of a redis-py client, for a decoder's own client."""
    pool = raw.connection_pool
    kw = pool.connection_kwargs
    if kw.get("credential_provider") is not None:
        raise ValueError("a credential provider cannot be handed to another process")
    spec = (pool.connection_class, {k: v for k, v in kw.items()
                                    if (k in _PLAIN_KWARGS or k.startswith("ssl_")) and type(v) is not object})
    pickle.dumps(spec)
    return spec


_LEN = struct.Struct("<Q")


def _send(fh, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    fh.write(_LEN.pack(len(data)))
    fh.write(data)
    fh.flush()


def _recv(fh):
    """The next message, or ``EOFError`` when the other side has gone."""
    head = fh.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError
    n = _LEN.unpack(head)[0]
    data = fh.read(n)
    if len(data) < n:
        raise EOFError
    return pickle.loads(data)  # noqa: S301 - our own child process, over a private pipe


class DecoderError(RuntimeError):
    """A decoder process died, or could not start."""


class DecoderPool:
    """``n`` decoder processes; ``map`` runs jobs on them, ``depth`` per process in flight, results in job
    order. A context manager: on exit the decoders are told to stop (or, after an error, killed) and
    waited for with a bound. ``wait=False`` returns once they are launched: they import while the caller
    goes on, and the first ``map``/``finish`` (or ``ready``) waits for them."""

    def __init__(self, n: int, start_timeout: float = 60.0, wait: bool = True) -> None:
        # -P: the decoders import the parent's modules (its sys.path), never an ``include`` of the working folder
        env = {"ARROW_DEFAULT_MEMORY_POOL": "system", "OPENBLAS_NUM_THREADS": "1", **os.environ,
               "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.procs: list[subprocess.Popen] = []
        self.pools: list[str] = []  # each decoder's Arrow memory pool
        self.feeds: list[queue.Queue] = []
        self.threads: list[threading.Thread] = []
        self.start_timeout, self.closed = start_timeout, False
        try:
            for _ in range(n):
                p = subprocess.Popen([sys.executable, "-P", "-m", "include.plays.decoders", str(os.getpid())],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
                self.procs.append(p)
            if wait:
                self.ready()
        except BaseException:
            self.close(kill=True)
            raise

    def ready(self) -> None:
        """Wait (``start_timeout`` at most) until every decoder has started; then its jobs can flow."""
        if self.threads:
            return
        try:
            for p in self.procs:
                if not select.select([p.stdout], [], [], self.start_timeout)[0]:
                    raise DecoderError(f"decoder process {p.pid} did not start within {self.start_timeout:.0f} s")
                try:
                    self.pools.append(_recv(p.stdout)[2])
                except EOFError:
                    raise DecoderError(f"decoder process {p.pid} exited at start ({p.wait(5)})") from None
            for p in self.procs:
                q: queue.Queue = queue.Queue()
                t = threading.Thread(target=self._feed, args=(p, q), name=f"decoder-feed-{p.pid}", daemon=True)
                t.start()
                self.feeds.append(q)
                self.threads.append(t)
        except BaseException:
            self.close(kill=True)
            raise

    @staticmethod
    def _feed(p: subprocess.Popen, q: queue.Queue) -> None:
        """Writes the jobs of ``q`` to ``p`` (a thread: a busy decoder blocks its writer, not the caller)."""
        try:
            while (job := q.get()) is not None:
                _send(p.stdin, job)
            p.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass  # the decoder is gone: its reader reports it

    def _result(self, w: int) -> dict:
        p = self.procs[w]
        try:
            kind, value = _recv(p.stdout)
        except EOFError:
            raise DecoderError(f"decoder process {p.pid} exited unexpectedly (code {p.wait(10)})") from None
        if kind == "ok":
            return value
        exc, text = value
        log.debug("decoder process %s failed:\n%s", p.pid, text)
        raise exc

    def map(self, jobs, depth: int = RAW_SLOTS_PER_DECODER):
        """The results of ``jobs`` (an iterable of dicts for ``decode_chunk``), in order."""
        self.ready()
        n = len(self.procs)
        pending: collections.deque[int] = collections.deque()
        for i, job in enumerate(jobs):
            self.feeds[i % n].put(job)
            pending.append(i % n)
            del job
            while len(pending) >= n * depth:
                yield self._result(pending.popleft())
        while pending:
            yield self._result(pending.popleft())

    def finish(self, jobs: list[dict]) -> list[dict]:
        """One last job per decoder (after ``map`` has given every result): their results, in order."""
        self.ready()
        for q, job in zip(self.feeds, jobs, strict=True):
            q.put(job)
        return [self._result(w) for w in range(len(self.procs))]

    def close(self, kill: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        for p in self.procs:
            if kill and p.poll() is None:
                p.kill()
        for q in self.feeds:
            q.put(None)
        if not self.threads:  # never used: the end of their input stops them
            for p in self.procs:
                try:
                    p.stdin.close()
                except (OSError, ValueError):
                    pass
        for t in self.threads:
            t.join(timeout=10)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
            for fh in (p.stdin, p.stdout):
                try:
                    fh.close()
                except (OSError, ValueError):
                    pass

    def __enter__(self) -> DecoderPool:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(kill=exc_type is not None)


class _NoPandas:
    """A decoder never uses pandas, but pyarrow's first ``pa.array`` imports it when it can (0.16 CPU-s and
    31 MiB a decoder): this import hook makes it unavailable there, as pyarrow allows."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.partition(".")[0] == "pandas":
            raise ImportError("pandas is not imported in a decoder process", name=name)


def _serve(parent: int) -> None:
    """A decoder's loop: jobs from stdin, results to (a copy of) stdout, until stdin ends."""
    global _IN_DECODER
    gc.disable()  # millions of short-lived tuples a chunk, no cycles kept: the collector only costs time
    sys.meta_path.insert(0, _NoPandas())
    import redis  # noqa: F401 - the first job's client spec names its classes: imported before "ready"

    die_with_parent(parent)
    lean_memory()
    reuse_heap()
    _IN_DECODER = True
    out = os.fdopen(os.dup(1), "wb")
    inp = os.fdopen(os.dup(0), "rb")
    os.dup2(2, 1)  # prints go to stderr, never into the result stream
    sys.stdout = sys.stderr
    _send(out, ("ready", os.getpid(), pa.default_memory_pool().backend_name))
    while True:
        try:
            job = _recv(inp)
        except EOFError:
            return
        try:
            res = ("ok", finish_sums(job) if job.get("finish") else decode_chunk(job))
        except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
            text = traceback.format_exc()
            try:
                pickle.dumps(exc)
            except Exception:  # noqa: BLE001
                exc = DecoderError(f"{type(exc).__name__}: {exc}")
            res = ("err", (exc, text))
        _send(out, res)


if __name__ == "__main__":
    from include.plays.decoders import _serve as serve  # by its name: exceptions pickle as include.plays...

    serve(int(sys.argv[1]))
