"""The retention policy: which files of the data root may go, given a listing of it and today's date.

Pure (no I/O): ``include.prune`` lists the data root, calls ``plan`` and removes what it returns.

What may go, and only this (everything else is kept: results, reports, contributions, documents,
allocations, the running totals, alerts, summaries, rejects):

* ``online_time/<D>/shards/``: the window's Arrow shards, once ``reports/<D>.json`` passed, every shard is
  older than that report (a re-run writing new shards keeps them) and D is more than ``shard_days`` old.
  A re-run of the day makes them again from the logs (``log_dir``, outside the data root).
* ``plays/<D>/snapshot/``: the raw Redis snapshot, once D is more than ``snapshot_days`` old, its report
  passed and ``cleanup`` ran. A re-run of D reads it (``T_endlist_D`` was emptied by ``cleanup``), so a day
  whose snapshot went can no longer be re-run from the data root.
* ``plays/<D>/quarantine.parquet``: once D is more than ``quarantine_days`` old and its report passed.

``verify --all`` reads none of these (the registry, the kept states, ``plays.parquet``,
``contrib/`` and ``docs/``). The daily ``verify`` of D reads all three: it is not run again on a pruned day.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

MAX_DAYS = 36_500  # a century: anything longer is a typo
SHARD_DAYS = 0
SNAPSHOT_DAYS = 90
QUARANTINE_DAYS = 90
MINIMUM = {"shard_days": 0, "snapshot_days": 1, "quarantine_days": 1}


class PolicyError(ValueError):
    """A retention setting that is not a whole number of days in range."""


def days_setting(name: str, value: object) -> int:
    """``value`` (an int, or text from a CLI option or a Variable) as a number of days, checked:
    a whole number from ``MINIMUM[name]`` to ``MAX_DAYS``; else ``PolicyError`` in one line."""
    low = MINIMUM[name]
    bad = f"retention {name} must be a whole number of days from {low} to {MAX_DAYS} (got {str(value)[:40]!r})"
    if isinstance(value, bool):
        raise PolicyError(bad)
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise PolicyError(bad)
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 6 or not text.isascii() or not text.isdigit():
            raise PolicyError(bad)
        value = int(text)
    if not isinstance(value, int) or not low <= value <= MAX_DAYS:
        raise PolicyError(bad)
    return value


@dataclass(frozen=True)
class Policy:
    shard_days: int = SHARD_DAYS
    snapshot_days: int = SNAPSHOT_DAYS
    quarantine_days: int = QUARANTINE_DAYS

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            object.__setattr__(self, name, days_setting(name, value))


@dataclass(frozen=True)
class Day:
    """What the listing found for one day (``None``/empty: absent)."""

    day: dt.date
    report_ok: bool = False
    report_at: dt.datetime | None = None         # the report's ``written_at``
    cleaned: bool = False                         # ``plays/<D>/cleanup.json`` exists
    shards: tuple[tuple[str, dt.datetime | None], ...] = ()  # (path, modified); ``None``: unknown
    snapshot: str | None = None                   # ``plays/<D>/snapshot`` when it exists
    quarantine: str | None = None                 # ``plays/<D>/quarantine.parquet`` when it exists


@dataclass(frozen=True)
class Removal:
    path: str
    day: str
    kind: str     # shards, snapshot, quarantine
    why: str = field(default="", compare=False)


def _shards_go(d: Day) -> bool:
    return (d.report_ok and d.report_at is not None and bool(d.shards)
            and all(m is not None and m < d.report_at for _, m in d.shards))


def plan(days: Iterable[Day], today: dt.date, policy: Policy = Policy()) -> list[Removal]:
    """What goes under ``policy`` on ``today``, by day then kind. Only days before ``today`` qualify."""
    out: list[Removal] = []
    for d in sorted(days, key=lambda d: d.day):
        age = (today - d.day).days
        if age < 1 or not d.report_ok:
            continue
        day = d.day.isoformat()
        if age > policy.shard_days and _shards_go(d):
            out += [Removal(p, day, "shards", "the window's results are verified") for p, _ in d.shards]
        if d.snapshot and d.cleaned and age > policy.snapshot_days:
            out.append(Removal(d.snapshot, day, "snapshot", f"older than {policy.snapshot_days} days"))
        if d.quarantine and age > policy.quarantine_days:
            out.append(Removal(d.quarantine, day, "quarantine", f"older than {policy.quarantine_days} days"))
    return out
