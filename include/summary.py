"""A short, human summary of a processed day, read back from the data root (used by `make demo`)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from include.runtime import data_root
from include.verify import report_path, summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("day", help="YYYY-MM-DD")
    day = dt.date.fromisoformat(p.parse_args(argv).day)
    root = data_root()
    if not root.exists(*report_path(day)):
        print(f"no verification report for {day} under {root.uri()}", file=sys.stderr)
        return 1
    report = root.read_json(*report_path(day))
    print(summary(report))
    totals = ("online_time", day.isoformat(), "totals.json")
    if root.exists(*totals):
        t = root.read_json(*totals)
        print(f"\nonline time {day}: {t.get('users')} users, {t.get('online_seconds')} s "
              f"-> {t.get('result_path')}")
    print(f"data root: {root.uri()}")
    print(f"  online time: {root.uri('online_time', day.isoformat())}")
    print(f"  plays:       {root.uri('plays', day.strftime('%Y%m%d'))}")
    print(f"  report:      {root.uri(*report_path(day))}")
    print(json.dumps({"ok": report["ok"]}))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
