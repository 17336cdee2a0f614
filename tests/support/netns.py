"""Separate "hosts" on this machine for the scale-out test: network namespaces on a bridge, each with its
own hostname (a UTS namespace) and working directory; TCP forwarders put services that listen on
127.0.0.1 only (the shared PostgreSQL and MariaDB) where the namespaces reach them."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@dataclass
class Host:
    name: str  # the hostname, and the namespace's
    ns: str
    address: str
    procs: list = field(default_factory=list)

    def popen(self, cmd: str, env: dict, cwd: str, log) -> subprocess.Popen:
        """``cmd`` (bash) on this host: in its namespaces, with its hostname, from ``cwd``."""
        script = f"hostname {self.name} && cd {cwd} && exec {cmd}"
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns, "unshare", "--uts", "--", "bash", "-c", script],
                                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def pids(self) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.ns], capture_output=True, text=True, timeout=30).stdout
        return [int(p) for p in out.split()]

    def kill_all(self) -> list[int]:
        """SIGKILL every process of this host (its network namespace), as a machine that dies."""
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        end = time.monotonic() + 20
        while self.pids() and time.monotonic() < end:
            time.sleep(0.2)
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        return pids


@contextmanager
def hosts(tag: str, names: list[str], subnet: str = "10.231.77"):
    """Namespaces ``names`` on a bridge: the bridge (this machine) is ``<subnet>.1``, the hosts ``.11``...
    Yields (bridge address, [Host]); removed (every process of theirs killed first) on exit."""
    bridge = f"vbr{tag}"[:15]
    made: list[Host] = []
    _ip("link", "add", bridge, "type", "bridge")
    try:
        _ip("addr", "add", f"{subnet}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for i, name in enumerate(names):
            ns, outer, inner = f"video-{tag}-{name}", f"v{tag}{i}o"[:15], f"v{tag}{i}i"[:15]
            _ip("netns", "add", ns)
            made.append(Host(name, ns, f"{subnet}.{11 + i}"))
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", outer, "master", bridge)
            _ip("link", "set", outer, "up")
            _ip("netns", "exec", ns, "ip", "addr", "add", f"{made[-1].address}/24", "dev", inner)
            _ip("netns", "exec", ns, "ip", "link", "set", inner, "up")
            _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield f"{subnet}.1", made
    finally:
        for h in made:
            h.kill_all()
            subprocess.run(["ip", "netns", "del", h.ns], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, timeout=30)


@contextmanager
def forwarders(listen: str, ports: list[int], target: str = "127.0.0.1"):
    """TCP forwarders ``listen:port`` -> ``target:port``, one thread with its own event loop."""
    loop = asyncio.new_event_loop()
    servers: list = []

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def handler(port: int):
        async def handle(reader, writer):
            try:
                r2, w2 = await asyncio.open_connection(target, port)
            except OSError:
                writer.close()
                return
            await asyncio.gather(pipe(reader, w2), pipe(r2, writer))
        return handle

    async def start():
        for port in ports:
            servers.append(await asyncio.start_server(handler(port), listen, port))

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    try:
        yield
    finally:
        async def stop():
            for s in servers:
                s.close()
        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
