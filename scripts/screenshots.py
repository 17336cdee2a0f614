#!/usr/bin/env python
"""README's dashboard screenshots from a running stack (`make up`, after `make demo`):

    .venv/bin/python scripts/screenshots.py --day 2014-01-07 [--base-url http://127.0.0.1:8080] [--out docs]

Logs in as admin/admin (``--user``/``--password``), checks the day has results, then saves
``dashboard.png`` (the overview in the Airflow UI) and ``dashboard-day.png`` (the day's whole page) with
headless Chromium (``tests/support/chromium.py``). Errors are one line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import chromium  # noqa: E402 - the repository's root is put on the path first

DASHBOARD = "/video-dashboard"


def login(base: str, user: str, password: str) -> str:
    """A JWT from the API server's simple auth manager (``POST /auth/token``)."""
    req = urllib.request.Request(f"{base}/auth/token", method="POST", headers={"Content-Type": "application/json"},
                                 data=json.dumps({"username": user, "password": password}).encode())
    with urllib.request.urlopen(req, timeout=15) as r:
        return json.load(r)["access_token"]


def status(base: str, token: str, path: str) -> int:
    req = urllib.request.Request(f"{base}{path}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def shoot(base: str, token: str, day: str, out: Path) -> list[Path]:
    """Save the overview (in the UI, its window) and the day's page (whole) under ``out``."""
    code = status(base, token, f"{DASHBOARD}/day/{day}")
    if code != 200:
        raise SystemExit(f"screenshots: {base}{DASHBOARD}/day/{day} answered {code}: no results for {day} "
                         "(run `make demo`, then pick one of its days)")
    shots = [out / "dashboard.png", out / "dashboard-day.png"]
    with tempfile.TemporaryDirectory(prefix="screenshots-") as tmp:
        chromium.page(base, token, "/plugin/video_dashboard", ["Video dashboard"], shots[0], Path(tmp) / "p1",
                      window=(1400, 900), settle=5)
        chromium.page(base, token, f"{DASHBOARD}/day/{day}", ["Top videos by plays", "Heat map"], shots[1],
                      Path(tmp) / "p2", window=(1300, 900), full_page=True)
    return shots


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--day", required=True, help="a day with results, YYYY-MM-DD")
    ap.add_argument("--base-url", default="http://127.0.0.1:8080", help="the Airflow UI (default %(default)s)")
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password", default="admin")
    ap.add_argument("--out", type=Path, default=ROOT / "docs", help="folder of the PNGs (default docs/)")
    ap.add_argument("--debug", action="store_true", help="show tracebacks")
    args = ap.parse_args(argv)
    try:
        day = dt.date.fromisoformat(args.day).isoformat()
    except ValueError:
        ap.error(f"--day must be YYYY-MM-DD (got {args.day!r})")
    base = args.base_url.rstrip("/")
    try:
        token = login(base, args.user, args.password)
        for shot in shoot(base, token, day, args.out):
            print(shot)
    except (OSError, chromium.ChromiumError, KeyError, ValueError) as exc:
        if args.debug:
            raise
        print(f"screenshots: {base}: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
