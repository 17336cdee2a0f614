"""The data root: a local folder or any fsspec URL (CONTRACT §4), the source of truth.

Files are written atomically: to a temporary name next to the final one, then renamed. A temporary name
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
import os
import posixpath
import re
import socket
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import fsspec

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


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a zombie counts: it may still be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        except (FileNotFoundError, NotADirectoryError):
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
            except FileNotFoundError:  # its writer renamed or removed it meanwhile
                continue
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
        """A binary file handle for ``parts``, written under a temporary name and renamed into place when
        the block ends without error (removed when it fails)."""
        p = self.path(*parts)
        tmp = self.tmp_name(p)
        with self.writing(p, tmp):
            with self.fs.open(tmp, "wb") as fh:
                yield fh
            self.fs.mv(tmp, p)

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

    def read_bytes(self, *parts: str) -> bytes:
        with self.fs.open(self.path(*parts), "rb") as fh:
            return fh.read()

    def write_json(self, obj: Any, *parts: str) -> str:
        return self.write_bytes(json.dumps(obj, indent=2, sort_keys=True, default=str).encode(), *parts)

    def read_json(self, *parts: str) -> Any:
        return json.loads(self.read_bytes(*parts))

    def write_jsonl(self, rows: list[dict], *parts: str) -> str:
        """One compact JSON object per line."""
        return self.write_bytes("".join(json.dumps(r) + "\n" for r in rows).encode(), *parts)

    def read_jsonl(self, *parts: str) -> list[dict]:
        """The rows ``write_jsonl`` wrote; ``[]`` when the file does not exist."""
        if not self.exists(*parts):
            return []
        return [json.loads(line) for line in self.read_bytes(*parts).decode().splitlines() if line]

    def write_table(self, table, *parts: str, **options) -> str:
        """Write a pyarrow Table (or pandas DataFrame) as Parquet (``options`` go to
        ``pyarrow.parquet.write_table``)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not isinstance(table, pa.Table):
            table = pa.Table.from_pandas(table, preserve_index=False)
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
        if filters is None and self.fs.isfile(p):
            # one file: read without pyarrow.dataset, whose import pulls in pandas (0.3-0.5 s of a
            # task's start-up, for tasks that use no pandas)
            proto = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
            if proto in ("file", "local"):
                return pq.ParquetFile(p).read(columns=columns)
            with self.fs.open(p, "rb") as fh:
                return pq.ParquetFile(fh).read(columns=columns)
        return pq.read_table(p, columns=columns, filters=filters, filesystem=self.fs)

    def glob(self, *parts: str) -> list[str]:
        return sorted(self.fs.glob(self.path(*parts)))
