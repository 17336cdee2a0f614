"""Headless Chromium over the DevTools protocol (CDP, a websocket; no Selenium): open a page of the
Airflow UI logged in with a JWT in the UI's ``_token`` cookie, wait for its text, save a PNG. Used by
``tests/integration/test_airflow_stack.py`` and ``scripts/screenshots.py``. Chromium runs in its own
process group, with its own profile folder, and is stopped by its pid."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path


class ChromiumError(RuntimeError):
    """Chromium is missing or did not answer."""


def _start(profile: Path, window: tuple[int, int]) -> tuple[subprocess.Popen, str]:
    """A headless Chromium on a free DevTools port: ``(process, websocket URL of its page)``."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise ChromiumError("chromium is not installed (`scripts/services.sh install` installs it)")
    proc = subprocess.Popen(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", f"--window-size={window[0]},{window[1]}",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        port_file = profile / "DevToolsActivePort"
        end = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > end or proc.poll() is not None:
                raise ChromiumError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        return proc, page["webSocketDebuggerUrl"]
    except BaseException:
        _stop(proc)
        raise


def _stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 15)
    except ProcessLookupError:
        pass
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait(5)


def page(base: str, token: str, path: str, expect: list[str], shot: Path, profile: Path, timeout: float = 60,
         window: tuple[int, int] = (1400, 900), full_page: bool = False, settle: float = 1) -> str:
    """Load ``base + path`` with the ``_token`` cookie; once every string of ``expect`` shows in the page's
    text (or at ``timeout``) and ``settle`` more seconds, save a PNG to ``shot`` (``full_page``: the whole
    document, else the window). Returns the page's text and HTML."""
    from websockets.sync.client import connect

    proc, ws_url = _start(profile, window)
    try:
        with connect(ws_url, max_size=64 * 2**20, open_timeout=10) as ws:
            seq = iter(range(1, 10**6))

            def cdp(method: str, **params):
                msg_id = next(seq)
                ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
                while True:
                    msg = json.loads(ws.recv(timeout=30))
                    if msg.get("id") == msg_id:
                        if "error" in msg:
                            raise ChromiumError(f"{method}: {msg['error']}")
                        return msg.get("result", {})

            def evaluate(expression: str) -> str:
                return cdp("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value", "")

            # the UI authenticates API calls with the `_token` cookie (COOKIE_NAME_JWT_TOKEN)
            cdp("Network.setCookie", name="_token", value=token, url=f"{base}/", httpOnly=True)
            cdp("Page.navigate", url=f"{base}{path}")
            text, end = "", time.monotonic() + timeout
            while time.monotonic() < end:
                text = evaluate("document.body ? document.body.innerText : ''")
                if all(e in text for e in expect):
                    break
                time.sleep(1)
            time.sleep(settle)
            params: dict = {"format": "png"}
            if full_page:
                size = cdp("Page.getLayoutMetrics")["cssContentSize"]
                params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": size["width"],
                                                                 "height": size["height"], "scale": 1})
            shot.parent.mkdir(parents=True, exist_ok=True)
            shot.write_bytes(base64.b64decode(cdp("Page.captureScreenshot", **params)["data"]))
            return text + "\n" + evaluate("document.documentElement.outerHTML")
    finally:
        _stop(proc)
