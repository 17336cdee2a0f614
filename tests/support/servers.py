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
    """A TCP port free on 127.0.0.1 now (the OS's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs: ``include.procs.pid_alive``, except that a zombie counts as gone
    (a child of the test that died and is not reaped yet; a daemonised server is not the test's child)."""
    from pathlib import Path

    from include.procs import pid_alive

    if not pid_alive(pid):
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _stop(proc: subprocess.Popen) -> None:
    """Terminate a server the test started (after a SIGCONT, in case it was frozen), by its pid."""
    import signal

    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def redis_server(folder, *args: str, password: str | None = None) -> Iterator[tuple[int, subprocess.Popen]]:
    """A redis-server of the test's own (``args`` added to its command line), once it answers a ping
    (with ``password`` when it needs one): its port and process. Terminated (after a SIGCONT) on exit."""
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
        _stop(proc)


@contextmanager
def smtp_server(folder) -> Iterator[tuple[int, subprocess.Popen, str]]:
    """A real SMTP server of the test's own (aiosmtpd, Maildir handler) on a free port, once it answers:
    its port, process and Maildir folder (``mails(maildir)`` reads it). Terminated by pid on exit."""
    import os
    import sys

    port, maildir = free_port(), os.path.join(str(folder), "maildir")
    proc = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                             "-c", "aiosmtpd.handlers.Mailbox", maildir],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                    if s.recv(64).startswith(b"220"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.fail("the test's SMTP server (aiosmtpd) did not start")
            time.sleep(0.1)
        yield port, proc, maildir
    finally:
        _stop(proc)


def mails(maildir) -> list:
    """The messages an ``smtp_server`` received (``email.message.Message``), oldest first."""
    import mailbox
    import os

    if not os.path.isdir(maildir):
        return []
    box = mailbox.Maildir(maildir, create=False)
    return sorted((box[k] for k in box.keys()), key=lambda m: m.get_date() or 0)


def mail_html(message) -> str:
    """The HTML body of a message (decoded)."""
    for part in message.walk():
        if part.get_content_type() == "text/html":
            return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
    return ""
