"""A private S3-compatible server for tests: moto's standalone server (``moto[server]`` from PyPI, in its
own venv, ``scripts/moto.sh install``: its server packages stay out of the project's venv), started on
a free port and stopped by pid. Every request it serves is in its log; ``requests`` counts them."""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
_LINE = re.compile(r'"(?:\x1b\[[0-9;]*m)*(GET|PUT|POST|HEAD|DELETE) (\S+) HTTP/[\d.]+(?:\x1b\[[0-9;]*m)*" (\d+)')


def moto_server_exe() -> str:
    """The ``moto_server`` to run: ``VIDEO_MOTO_SERVER``, the checkout's ``.venv-moto``, else on PATH."""
    for cand in (os.environ.get("VIDEO_MOTO_SERVER"), str(ROOT / ".venv-moto" / "bin" / "moto_server"),
                 shutil.which("moto_server")):
        if cand and os.access(cand, os.X_OK):
            return cand
    pytest.fail("moto_server is not installed: run `scripts/moto.sh install` (a venv of its own, .venv-moto)")


@dataclass
class S3Server:
    endpoint: str
    log: Path
    proc: subprocess.Popen
    key: str = "video-test-key"
    secret: str = "video-test-secret-0123456789"

    def connection(self, endpoint: str | None = None, **extra) -> str:
        """``AIRFLOW_CONN_VIDEO_STORAGE`` (JSON) for this server."""
        return json.dumps({"conn_type": "aws", "login": self.key, "password": self.secret,
                           "extra": {"endpoint_url": endpoint or self.endpoint, "region_name": "us-east-1", **extra}})

    def create_bucket(self, name: str) -> None:
        req = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        urllib.request.urlopen(req, timeout=10).close()

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """Replace an object directly, as another writer would."""
        from pyarrow import fs as pafs

        fs = pafs.S3FileSystem(access_key=self.key, secret_key=self.secret, region="us-east-1", scheme="http",
                               endpoint_override=self.endpoint.split("://", 1)[1], allow_delayed_open=True)
        with fs.open_output_stream(f"{bucket}/{key}") as out:
            out.write(data)

    def keys(self, bucket: str) -> list[str]:
        """Every key in ``bucket`` (the server's own view)."""
        body = urllib.request.urlopen(f"{self.endpoint}/{bucket}?list-type=2&max-keys=100000", timeout=10).read()
        return sorted(re.findall(r"<Key>([^<]+)</Key>", body.decode()))

    def mark(self) -> int:
        """A position in the request log, for ``requests(since=…)``."""
        return self.log.stat().st_size

    def requests(self, since: int = 0) -> collections.Counter:
        """The requests served since ``since``, by kind: PUT (also a server-side copy, a multipart part), GET,
        HEAD, LIST, DELETE (also one multi-object delete), POST (a multipart upload's start and end)."""
        with open(self.log, "rb") as fh:
            fh.seek(since)
            text = fh.read().decode(errors="replace")
        out: collections.Counter = collections.Counter()
        for method, path, _status in _LINE.findall(text):
            if path.startswith("/moto-api"):
                continue
            listing = method == "GET" and ("list-type" in path or path.rstrip("/").count("/") <= 1 and "?" in path)
            multi_delete = method == "POST" and re.search(r"\?delete(&|=|$)", path) is not None
            out["LIST" if listing else "DELETE" if multi_delete else method] += 1
        return out


@contextmanager
def s3_server(folder: Path, host: str = "127.0.0.1", check_credentials: bool = False):
    """A moto server of the test's own on ``host`` (``folder`` holds its log), stopped by pid. With
    ``check_credentials`` it refuses every request whose access key it does not know (all of them)."""
    port = free_port()
    log = folder / "moto.log"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"} if check_credentials else None
    with open(log, "wb") as out:
        proc = subprocess.Popen([moto_server_exe(), "-H", host, "-p", str(port)], stdout=out, env=env,
                                stderr=subprocess.STDOUT, start_new_session=True)
    server = S3Server(f"http://{host}:{port}", log, proc)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{server.endpoint}/moto-api/", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not start: {log.read_text()[-500:]}")
                time.sleep(0.2)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
