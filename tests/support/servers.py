"""Private servers for tests that stop or freeze them (never the shared ones): started on a free port,
stopped by pid."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def redis_server(folder, *args: str, password: str | None = None) -> Iterator[tuple[int, subprocess.Popen]]:
    """A redis-server of the test's own (``args`` added to its command line), once it answers a ping
    (with ``password`` when it needs one): its port and process. Terminated (after a SIGCONT) on exit."""
    import signal

    import redis

    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed (scripts/services.sh install)")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
                             "--appendonly", "no", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        probe, deadline = redis.Redis(port=port, password=password), time.monotonic() + 20
        while True:
            try:
                probe.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("the test's redis-server did not start")
                time.sleep(0.1)
        probe.close()
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
