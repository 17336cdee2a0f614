"""``s3://`` URLs on any S3-compatible store (AWS S3, MinIO, Ceph), for the DAG, the CLI and the dashboard.

fsspec's ``s3`` protocol is served here by Arrow's own S3 client (``pyarrow.fs.S3FileSystem``, in the
pyarrow wheel; no boto), wrapped as an fsspec filesystem, so ``DataRoot``, ``fsspec.open`` and
``fsspec.core.url_to_fs`` take ``s3://bucket/prefix`` URLs as they take local folders. It keeps no listing
cache: every ``info``/``ls`` asks the store, so a long-lived process (the API server's dashboard) never
sees a stale listing or an object that changed under it.

Credentials and endpoint come from the Airflow connection ``video_storage`` (conn type ``aws``): login =
access key id, password = secret key, extra ``endpoint_url`` (for S3-compatible stores) and
``region_name``. Without that connection, Arrow's usual AWS chain applies (``AWS_*`` variables, instance
role). A failure names the connection, the endpoint and the URL in one line, never the secret.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from urllib.parse import urlsplit

import fsspec
from fsspec.implementations.arrow import ArrowFSWrapper

from include.settings import STORAGE_CONN_ID as CONN_ID
from include.settings import storage_connection

PROTOCOLS = ("s3", "s3a")
_AWS_ERROR = re.compile(r"AWS Error \[?(?:code \d+\]?)?\s*([A-Z_]+)?[^:]*:?\s*(.*)")


def connection_options() -> dict:
    """``pyarrow.fs.S3FileSystem`` options from the ``video_storage`` connection (``{}`` when it is not
    defined: Arrow's own AWS chain then)."""
    c = storage_connection()
    if c is None:
        return {}
    extra = c.extra_dejson or {}
    opts: dict = {}
    key = c.login or extra.get("aws_access_key_id")
    secret = c.password or extra.get("aws_secret_access_key")
    if key and secret:
        opts.update(access_key=key, secret_key=secret)
        if extra.get("aws_session_token"):
            opts["session_token"] = extra["aws_session_token"]
    endpoint = extra.get("endpoint_url") or (c.host if c.host and "://" in c.host else None)
    if endpoint:
        u = urlsplit(endpoint)
        opts.update(endpoint_override=u.netloc + u.path.rstrip("/"), scheme=u.scheme or "https")
        opts["force_virtual_addressing"] = False
    region = extra.get("region_name") or ("us-east-1" if endpoint else None)
    if region:
        opts["region"] = region
    return opts


def where(opts: dict) -> str:
    """``video_storage (http://127.0.0.1:9000)``: the connection and endpoint, for messages."""
    ep = opts.get("endpoint_override")
    return f"{CONN_ID} ({opts.get('scheme', 'https')}://{ep})" if ep else f"{CONN_ID} (AWS S3)"


def reason(exc: BaseException) -> str:
    """The short cause of an Arrow S3 error (``NO_SUCH_BUCKET``, ``ACCESS_DENIED: …``), on one line."""
    text = " ".join(str(exc).split())
    m = _AWS_ERROR.search(text)
    if m is None:
        return text[:300]
    code, detail = m.group(1) or "", m.group(2).strip()
    return (f"{code}: {detail}" if code else detail)[:300]


class StoreError(OSError):
    """An object store failure: one line naming the URL, the connection and its endpoint (``filename``)
    and the cause (``strerror``)."""

    def __init__(self, url: str, label: str, cause: str):
        super().__init__(f"{url} (connection {label}): {cause}")
        self.filename, self.strerror = f"{url} (connection {label})", cause

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def guarded(method, label: str):
    """``method`` whose ``OSError`` (but ``FileNotFoundError``) becomes one ``StoreError`` naming the object
    (its first argument) and ``label``."""
    @functools.wraps(method)
    def call(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except FileNotFoundError:
            raise
        except OSError as exc:
            target = args[0] if args else "?"
            if isinstance(target, list | tuple):
                target = target[0] if target else "?"
            target = str(getattr(target, "base_dir", target))
            if not target.startswith("s3://"):
                target = "s3://" + target
            raise StoreError(target, label, f"object store: {reason(exc)}") from exc
    return call


class _GuardedArrowFS:
    """Arrow's S3 filesystem whose errors name the connection and the object (never the secret)."""

    _METHODS = ("get_file_info", "open_input_file", "open_input_stream", "open_output_stream", "delete_file",
                "delete_dir", "delete_dir_contents", "create_dir", "move", "copy_file")

    def __init__(self, fs, label: str):
        self._fs = self.arrow = fs  # arrow: the unwrapped ``pyarrow.fs.S3FileSystem``, for Arrow's own readers
        for name in self._METHODS:
            setattr(self, name, guarded(getattr(fs, name), label))

    def __getattr__(self, name):
        return getattr(self._fs, name)


@functools.lru_cache(maxsize=8)
def _arrow_s3(items: tuple):
    """One Arrow S3 client per set of options (a client holds its connection pool)."""
    from pyarrow import fs as pafs

    return pafs.S3FileSystem(**dict(items))


class S3FileSystem(ArrowFSWrapper):
    """fsspec's ``s3://`` on Arrow's S3 client, configured from the ``video_storage`` connection."""

    protocol = PROTOCOLS
    root_marker = ""
    cachable = False  # the connection is read anew each time: fsspec's instance cache would keep an old one

    def __init__(self, **options):
        opts = {**connection_options(), **options}
        opts.setdefault("allow_bucket_creation", False)
        opts.setdefault("allow_bucket_deletion", False)
        opts.setdefault("allow_delayed_open", True)  # an object up to one part (10 MiB) is one PUT, not 3 requests
        self.options = opts
        self.label = where(opts)
        super().__init__(_GuardedArrowFS(_arrow_s3(tuple(sorted(opts.items()))), self.label))

    @classmethod
    def _strip_protocol(cls, path):
        path = str(path)
        for p in PROTOCOLS:
            if path.startswith(p + "://"):
                path = path[len(p) + 3:]
        return path.rstrip("/")

    def unstrip_protocol(self, name: str) -> str:
        return "s3://" + self._strip_protocol(name)

    def makedirs(self, path, exist_ok=False):
        """Object stores have no folders: nothing to create."""

    def mkdir(self, path, create_parents=True, **kwargs):
        """Object stores have no folders: nothing to create."""


def version(fs: S3FileSystem, path: str) -> tuple | None:
    """The object's ETag (and VersionId, where the bucket keeps versions), from one HEAD; ``None`` when
    there is no such object. Any rewrite changes it, even within the second of the last one."""
    try:
        meta = fs.fs.open_input_file(path).metadata()
    except FileNotFoundError:
        return None
    return (meta.get("ETag"), meta.get("VersionId"), meta.get("Content-Length"))


def check_bucket(fs: S3FileSystem, base: str) -> None:
    """Raise ``StoreError`` unless the bucket of ``base`` (``bucket/prefix``) exists and answers."""
    from pyarrow import fs as pafs

    bucket = base.split("/", 1)[0]
    if fs.fs.get_file_info(bucket).type == pafs.FileType.NotFound:
        raise StoreError(f"s3://{bucket}", fs.label, "object store: NO_SUCH_BUCKET: the bucket does not exist")


def register() -> None:
    """Serve ``s3://`` (and ``s3a://``) URLs with ``S3FileSystem`` in this process."""
    for p in PROTOCOLS:
        fsspec.register_implementation(p, S3FileSystem, clobber=True)


def is_object_store(fs) -> bool:
    """Whether ``fs`` stores objects (a PUT is atomic, there is no rename), not files."""
    proto = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return proto not in ("file", "local", "memory")


def upload_folder(folder: str, url: str) -> list[str]:
    """Put every file of the local ``folder`` (not below) under ``url``, one PUT each, as a log collector
    would (``python -m include.object_store upload FOLDER URL``). Returns the URLs written."""
    from include.storage import DataRoot

    root, done = DataRoot(url), []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, "rb") as fh, root.open_write(name) as out:
                shutil.copyfileobj(fh, out, 1 << 20)
            done.append(root.uri(name))
    return done


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 4 or sys.argv[1] != "upload":
        sys.exit("usage: python -m include.object_store upload FOLDER URL")
    try:
        print(f"uploaded {len(upload_folder(sys.argv[2], sys.argv[3]))} file(s) to {sys.argv[3]}")
    except OSError as exc:
        sys.exit(f"upload: error: {exc}")
