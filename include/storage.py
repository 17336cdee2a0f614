"""The data root: a local folder or any fsspec URL (CONTRACT §4), the source of truth."""

from __future__ import annotations

import json
import posixpath
import uuid
from dataclasses import dataclass, field
from typing import Any

import fsspec


@dataclass
class DataRoot:
    """Relative paths under one root URL, read and written through fsspec."""

    url: str
    fs: Any = field(init=False, repr=False)
    base: str = field(init=False)

    def __post_init__(self) -> None:
        self.fs, self.base = fsspec.core.url_to_fs(self.url)
        self.base = self.base.rstrip("/") or "/"

    def path(self, *parts: str) -> str:
        """Filesystem path (without protocol) of ``parts`` under the root."""
        return posixpath.join(self.base, *parts)

    def uri(self, *parts: str) -> str:
        """Full URL of ``parts``, for messages and reports."""
        p = self.path(*parts)
        proto = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        return p if proto in ("file", "local") else f"{proto}://{p}"

    def exists(self, *parts: str) -> bool:
        return self.fs.exists(self.path(*parts))

    def remove(self, *parts: str) -> None:
        p = self.path(*parts)
        if self.fs.exists(p):
            self.fs.rm(p, recursive=True)

    def write_bytes(self, data: bytes, *parts: str) -> str:
        """Write atomically where the filesystem allows it (write then rename)."""
        p = self.path(*parts)
        self.fs.makedirs(posixpath.dirname(p), exist_ok=True)
        tmp = f"{p}.{uuid.uuid4().hex[:12]}.tmp"  # unique: concurrent writers never share one
        with self.fs.open(tmp, "wb") as fh:
            fh.write(data)
        self.fs.mv(tmp, p)
        return p

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
        self.fs.makedirs(posixpath.dirname(p), exist_ok=True)
        tmp = f"{p}.{uuid.uuid4().hex[:12]}.tmp"  # unique: concurrent writers never share one
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
