"""The data root: a local folder or any fsspec URL (CONTRACT §4), the source of truth.

On an object store (``s3://…``, ``include.object_store``) a single PUT is atomic: an object is written in
one request once whole, never under a temporary name, so there is nothing to rename and nothing for a
killed writer to leave behind. Until then it is staged in this process, in memory up to ``SPOOL_BYTES``
and past that in an unnamed local temporary file (gone with the process, whatever kills it).

On a local disk, files are written atomically: to a temporary name next to the final one, then renamed. A temporary name
says who writes it, ``<final>.<token>.<pid>@<host>.tmp`` (``host``: the host name and its PID namespace), so
the leftovers of a writer that died (kill -9, a lost machine) can be told from the files of one still
writing. Before a process first writes into a folder, it removes that folder's leftovers
(``DataRoot.sweep_tmp``): those of dead processes of this host at once, any other (another host's, or
the older ``<final>.<token>.tmp``) once untouched for ``TMP_MAX_AGE_S``. A write that fails removes its
temporary file, and an ``OSError`` names the file (a full disk says which file and why).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import posixpath
import re
import shutil
import socket
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import fsspec
import ujson

from include import object_store
from include.procs import pid_alive

log = logging.getLogger(__name__)
object_store.register()
SPOOL_BYTES = 8 << 20  # an object being written is held in memory up to this size, then in a local temp file

TMP_MAX_AGE_S = 24 * 3600  # a temporary file of another host (or an unnamed one) untouched this long is litter


def _host_tag() -> str:
    """This host's name (characters safe in a file name) and its PID namespace: processes that share a
    host name but not their PIDs (containers) never judge each other's files."""
    tag = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "host"
    try:
        ns = re.sub(r"\D", "", os.readlink("/proc/self/ns/pid"))
    except OSError:
        ns = ""
    return f"{tag}-{ns}" if ns else tag


HOST = _host_tag()
_TMP = re.compile(r"\.[0-9a-f]{12}\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9.-]+)\.tmp$")
_OLD_TMP = re.compile(r"\.[0-9a-f]{12}\.tmp$")


def named_error(exc: OSError, where: str) -> OSError:
    """``exc`` as an ``OSError`` of the same errno naming ``where``, with the errno's text (Arrow's own
    text, ``Error writing bytes to file``, names no file and no cause). One that names a file already is
    returned as it is."""
    if exc.filename is not None:
        return exc
    if exc.errno:
        return OSError(exc.errno, os.strerror(exc.errno), where)
    out = OSError(f"{where}: {exc}")
    out.filename, out.strerror = where, str(exc)
    return out


@dataclass
class DataRoot:
    """Relative paths under one root URL, read and written through fsspec."""

    url: str
    fs: Any = field(init=False, repr=False)
    base: str = field(init=False)
    _swept: set = field(init=False, repr=False, compare=False, default_factory=set)

    def __post_init__(self) -> None:
        self.fs, self.base = fsspec.core.url_to_fs(self.url)
        self.base = self.base.rstrip("/") or "/"
        self.objects = object_store.is_object_store(self.fs)
        if self.objects:
            object_store.check_bucket(self.fs, self.base)

    def path(self, *parts: str) -> str:
        """Filesystem path (without protocol) of ``parts`` under the root."""
        return posixpath.join(self.base, *parts)

    def uri(self, *parts: str) -> str:
        """Full URL of ``parts``, for messages and reports."""
        return self.url_of(self.path(*parts))

    def url_of(self, p: str) -> str:
        """Full URL of the filesystem path ``p``."""
        proto = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        return p if proto in ("file", "local") else f"{proto}://{p}"

    def tmp_name(self, p: str) -> str:
        """A temporary name for writing the filesystem path ``p`` (unique, naming this process); creates
        the folder, and first sweeps its leftovers when this ``DataRoot`` has not written there yet."""
        folder = posixpath.dirname(p)
        with self.writing(p):
            self.fs.makedirs(folder, exist_ok=True)
        if folder not in self._swept:
            self._swept.add(folder)
            self.sweep_folder(folder)
        return f"{p}.{uuid.uuid4().hex[:12]}.{os.getpid()}@{HOST}.tmp"

    def sweep_tmp(self, *parts: str, max_age: float = TMP_MAX_AGE_S) -> list[str]:
        """Remove the temporary files left in folder ``parts`` (not below) by writers that died: this
        host's whose process is gone, others' untouched for ``max_age`` seconds. Returns their paths."""
        return self.sweep_folder(self.path(*parts), max_age)

    def sweep_folder(self, folder: str, max_age: float = TMP_MAX_AGE_S) -> list[str]:
        """``sweep_tmp`` of the filesystem path ``folder``."""
        try:
            entries = self.fs.ls(folder, detail=True)
        except OSError:  # no folder yet, or none to read: nothing to sweep, and the write goes on
            return []
        removed = []
        for e in entries:
            name = e["name"]
            if e.get("type") != "file" or not name.endswith(".tmp"):
                continue
            try:
                if self._litter(name, max_age):
                    self.fs.rm(name)
                    removed.append(name)
            except OSError as exc:  # gone meanwhile (its writer renamed it), or not ours to remove
                if not isinstance(exc, FileNotFoundError):
                    log.warning("could not remove the leftover %s: %s", self.url_of(name), exc)
        if removed:
            log.warning("removed %d temporary file(s) of dead writers in %s: %s", len(removed),
                        self.url_of(folder), [posixpath.basename(n) for n in removed])
        return removed

    def _litter(self, name: str, max_age: float) -> bool:
        m = _TMP.search(name)
        if m is not None and m["host"] == HOST:
            pid = int(m["pid"])
            return pid != os.getpid() and not pid_alive(pid)
        if m is None and _OLD_TMP.search(name) is None:
            return False  # not a name this project writes
        try:
            mtime = self.fs.modified(name)
        except NotImplementedError:
            return False
        if mtime.tzinfo is None:
            mtime = mtime.replace(tzinfo=dt.UTC)
        return (dt.datetime.now(dt.UTC) - mtime).total_seconds() > max_age

    @contextmanager
    def writing(self, p: str, tmp: str | None = None):
        """Writes to the filesystem path ``p`` inside the block: an ``OSError`` is raised again naming
        ``p`` (``named_error``), and ``tmp``, the temporary file being written, is removed on any error."""
        try:
            yield
        except BaseException as exc:
            if tmp is not None:
                try:
                    self.fs.rm(tmp)
                except OSError:
                    pass
            if isinstance(exc, OSError) and exc.filename is None:
                raise named_error(exc, self.url_of(p)) from exc
            raise

    @contextmanager
    def open_write(self, *parts: str):
        """A binary file handle for ``parts``, put in place when the block ends without error: on a local
        disk written under a temporary name and renamed (removed when it fails); on an object store
        staged locally and uploaded in one PUT (nothing written when it fails)."""
        p = self.path(*parts)
        if self.objects:
            with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as spool:
                yield spool
                self.upload(spool, p)
            return
        tmp = self.tmp_name(p)
        with self.writing(p, tmp):
            with self.fs.open(tmp, "wb") as fh:
                yield fh
            self.fs.mv(tmp, p)

    def upload(self, fh, p: str) -> None:
        """Write the readable file ``fh`` (from its start) as the object at filesystem path ``p``."""
        fh.seek(0)
        with self.writing(p):
            with self.fs.open(p, "wb") as out:
                shutil.copyfileobj(fh, out, 1 << 20)

    def stage(self, *parts: str) -> Staged:
        """A ``Staged`` file for ``parts``: written locally, put in place by ``commit``."""
        p = self.path(*parts)
        if self.objects:
            return Staged(self, p, None)
        return Staged(self, p, self.tmp_name(p))

    def exists(self, *parts: str) -> bool:
        return self.fs.exists(self.path(*parts))

    def remove(self, *parts: str) -> None:
        p = self.path(*parts)
        if self.fs.exists(p):
            self.fs.rm(p, recursive=True)

    def write_bytes(self, data: bytes, *parts: str) -> str:
        """Write atomically where the filesystem allows it (write then rename)."""
        with self.open_write(*parts) as fh:
            fh.write(data)
        return self.path(*parts)

    def copy_file(self, src: str, dst: str) -> None:
        """The file ``src`` (a path under the root) copied as it is to ``dst``, whole or not at all: on a local
        disk to a temporary name then renamed, on an object store one server-side copy (Arrow's CopyObject;
        fsspec's ``cp_file`` would copy to a temporary object)."""
        final = self.path(dst)
        if self.objects:
            with self.writing(final):
                self.fs.fs.copy_file(self.path(src), final)
            return
        tmp = self.tmp_name(final)
        with self.writing(final, tmp):
            self.fs.cp_file(self.path(src), tmp)
            self.fs.mv(tmp, final)

    def read_bytes(self, *parts: str) -> bytes:
        if self.objects:  # one GET (fsspec's open would first HEAD the object)
            with self.fs.fs.open_input_stream(self.path(*parts)) as fh:
                return fh.read()
        with self.fs.open(self.path(*parts), "rb") as fh:
            return fh.read()

    def version(self, rel: str) -> tuple | None:
        """What changes whenever the file ``rel`` is rewritten (a cache key), ``None`` when it does not
        exist: an object's ETag on an object store, (mtime, size) on a disk."""
        if self.objects:
            return object_store.version(self.fs, self.path(rel))
        try:
            info = self.fs.info(self.path(rel))
        except FileNotFoundError:
            return None
        return (str(info.get("mtime") or info.get("LastModified") or info.get("last_modified")), info.get("size"))

    @contextmanager
    def reading(self, p: str, what: str):
        """Reads of the filesystem path ``p`` inside the block: on an object store, content that is not
        ``what`` (an object replaced by garbage) raises one ``StoreError`` naming the URL and the
        connection."""
        try:
            yield
        except (ValueError, UnicodeDecodeError) as exc:  # json's and Arrow's ArrowInvalid are ValueErrors
            if not self.objects:
                raise
            cause = " ".join(str(exc).split())[:200]
            raise object_store.StoreError(self.url_of(p), self.fs.label, f"not {what}: {cause}") from exc

    def write_json(self, obj: Any, *parts: str) -> str:
        return self.write_bytes(json.dumps(obj, indent=2, sort_keys=True, default=str).encode(), *parts)

    def read_json(self, *parts: str) -> Any:
        with self.reading(self.path(*parts), "JSON"):
            return json.loads(self.read_bytes(*parts))

    def write_jsonl(self, rows: list[dict], *parts: str) -> str:
        """One compact JSON object per line (``jsonl_line``)."""
        return self.write_bytes("".join(jsonl_line(r) + "\n" for r in rows).encode(), *parts)

    def read_jsonl(self, *parts: str) -> list[dict]:
        """The rows ``write_jsonl`` wrote; ``[]`` when the file does not exist."""
        if not self.exists(*parts):
            return []
        with self.reading(self.path(*parts), "JSON lines"):
            return jsonl_rows(self.read_bytes(*parts))

    def write_table(self, table, *parts: str, **options) -> str:
        """Write a pyarrow Table (or pandas DataFrame) as Parquet (``options`` go to
        ``pyarrow.parquet.write_table``)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not isinstance(table, pa.Table):
            table = pa.Table.from_pandas(table, preserve_index=False)
        if self.objects:
            with self.open_write(*parts) as fh:
                pq.write_table(table, fh, **options)
            return self.path(*parts)
        p = self.path(*parts)
        tmp = self.tmp_name(p)
        with self.writing(p, tmp):
            pq.write_table(table, tmp, filesystem=self.fs, **options)
            self.fs.mv(tmp, p)
        return p

    def read_table(self, *parts: str, columns: list[str] | None = None, filters=None):
        """Read Parquet (a file, or a folder of them) as a pyarrow Table."""
        import pyarrow.parquet as pq

        p = self.path(*parts)
        with self.reading(p, "Parquet"):
            if filters is None and self.fs.isfile(p):
                # one file: read without pyarrow.dataset, whose import pulls in pandas (0.3-0.5 s of a
                # task's start-up, for tasks that use no pandas)
                proto = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
                if proto in ("file", "local"):
                    return pq.ParquetFile(p).read(columns=columns)
                with self.fs.open(p, "rb") as fh:
                    return pq.ParquetFile(fh).read(columns=columns)
            if self.objects:  # Arrow's own S3 client, not through fsspec; its errors name the connection
                read = object_store.guarded(pq.read_table, self.fs.label)
                return read(p, columns=columns, filters=filters, filesystem=self.fs.fs.arrow)
            return pq.read_table(p, columns=columns, filters=filters, filesystem=self.fs)

    def glob(self, *parts: str) -> list[str]:
        return sorted(self.fs.glob(self.path(*parts)))


def jsonl_rows(data: bytes) -> list:
    """The rows of JSON lines ``data``, as ``json.loads`` reads each line: by msgspec (a 1M day's documents
    2.5× faster), or by ``json`` when msgspec refuses the text (``NaN``, infinities, lone surrogates)."""
    import msgspec

    try:
        return msgspec.json.Decoder().decode_lines(data)
    except msgspec.DecodeError:
        return [json.loads(line) for line in data.decode().splitlines() if line]


def jsonl_line(row: dict) -> str:
    """``row`` as one line of JSON that ``json.loads`` reads back as ``json.dumps(row)`` would give it (floats
    as their shortest round-trip text, ``NaN``/``Infinity`` and lone surrogates as ``json`` writes them), by
    ``ujson``: 2.4x quicker on a day's documents (a 5M day's vdaily, daily and type lines: ~1 s less)."""
    return ujson.dumps(row, ensure_ascii=True, escape_forward_slashes=False)


class Staged:
    """One file written locally (``fh``) and put in place at ``path`` by ``commit``: renamed from its
    temporary name ``tmp`` on a local disk; on an object store (``tmp`` None) an unnamed local temporary
    file, uploaded in one PUT. ``abort`` drops it. Memory stays one small buffer, however many are open."""

    def __init__(self, root: DataRoot, path: str, tmp: str | None):
        import pyarrow as pa

        self.root, self.path, self.tmp = root, path, tmp
        if tmp is None:
            self.fh = tempfile.TemporaryFile(prefix="video-analytics-stage-")
        elif root.url_of(tmp) == tmp:  # a local path
            self.fh = pa.OSFile(tmp, "wb")
        else:
            self.fh = root.fs.open(tmp, "wb")

    def commit(self) -> None:
        with self.root.writing(self.path, self.tmp):
            if self.tmp is None:
                self.root.upload(self.fh, self.path)
                self.fh.close()
            else:
                self.fh.close()
                self.root.fs.mv(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self.fh.close()
        finally:
            if self.tmp is not None and self.root.fs.exists(self.tmp):
                self.root.fs.rm(self.tmp)
