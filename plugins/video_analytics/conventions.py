"""The project's conventions, each in one place: day formats, Redis key names, data-root paths
and the rule defaults (CONTRACT §1-§5).

Light on purpose (standard library only): the DAG file imports it at parse time.
"""

from __future__ import annotations

import datetime as dt

# ---- days ------------------------------------------------------------------------------------------
# Redis keys and Mongo _ids use %Y%m%d (20140107); log files and report names use %Y-%m-%d.
YMD = "%Y%m%d"


def ymd(day: dt.date) -> str:
    """``20140107``: the day as Redis keys and Mongo ``_id``s spell it."""
    return day.strftime(YMD)


def parse_ymd(text: str) -> dt.date:
    """The inverse of ``ymd``; ``ValueError`` on anything else."""
    if len(text) != 8 or not text.isdigit():
        raise ValueError(f"a day must be YYYYMMDD (got {text!r})")
    return dt.datetime.strptime(text, YMD).date()


def as_date(day: dt.date | str) -> dt.date:
    """A ``date`` from a date, ``YYYYMMDD`` or ``YYYY-MM-DD``."""
    if isinstance(day, dt.date):
        return day
    return parse_ymd(day) if "-" not in day else dt.date.fromisoformat(day)


# ---- rule defaults (CONTRACT §1, §5): the DAG params, the CLI, the adapters and verify use these ----
WINDOW_DAYS = 7
LOOKBACK_DAYS = 1
SHARDS = 8  # the CLI's sorting stages; the DAG chooses its shard count from the input (auto_shards)
SHARD_TARGET_BYTES = 256 * 2**20  # log bytes per shard when the DAG chooses (auto_shards)
MIN_GAP = 3
TIMEOUT = 600
POST_MULTIPLIER = 3
MAX_REJECT_RATE = 0.01
MAX_QUARANTINE_RATE = 0.01



def auto_shards(window_bytes: int, max_shards: int = SHARDS, target_bytes: int | None = None) -> int:
    """The DAG's shard count (mapped ``compute_shard`` tasks) when the ``shards`` param is not set:
    one per ``target_bytes`` (default ``SHARD_TARGET_BYTES``) of the window's log files (lookback day included), at least 1 and at
    most ``max_shards`` (the task slots that can run them at once).

    A shard's work is a few hundredths of a second per million events (streamed C rules), while a
    task costs 0.1 s (``dags test``) to seconds (a Celery worker) of start-up, state updates and
    XComs, so shards pay off only in parallel and for memory: 256 MiB of logs is about 8 M
    events, about 0.5 GB for a shard that must be sorted."""
    target_bytes = SHARD_TARGET_BYTES if target_bytes is None else target_bytes
    if window_bytes < 0 or max_shards < 1 or target_bytes < 1:
        raise ValueError(f"auto_shards({window_bytes}, {max_shards}, {target_bytes})")
    return max(1, min(max_shards, -(-window_bytes // target_bytes)))


# ---- Redis keys (CONTRACT §2) -------------------------------------------------------------------
KID_HASH = "T_video_kid_info"
PLAYID_HASH = "vid_playid"
TABLE_KEYS = {"load": "T_loadtable_{day}", "play": "T_playtable_{day}", "region": "T_regiontable_{day}"}


def lease_key(day: str) -> str:
    """``video_lease_<YYYYMMDD>``: who is processing the day's plays now (one at a time)."""
    return f"video_lease_{day}"


def reservation_key(day: str) -> str:
    """``vid_playid_pending_<YYYYMMDD>``: play ids reserved for the day and not yet recorded in the
    data root (vid -> "before:count"), so a run after a crash reuses them."""
    return f"vid_playid_pending_{day}"


def endlist_key(day: str) -> str:
    """``T_endlist_<YYYYMMDD>``: the day's finished plays."""
    return f"T_endlist_{day}"


def table_key(table: str, day: str) -> str:
    """``T_loadtable_D`` / ``T_playtable_D`` / ``T_regiontable_D`` for ``table`` in ``TABLE_KEYS``."""
    return TABLE_KEYS[table].format(day=day)


# ---- the data root (CONTRACT §4) ------------------------------------------------------------------
# Every path below is relative to the data root, "/"-separated.


def plays_path(day: str, *parts: str) -> str:
    """``plays/<YYYYMMDD>/...``: everything a day's play documents are rebuilt from."""
    return "/".join(("plays", day, *parts))


TOTALS_DIR = "totals"


def totals_path(*parts: str) -> str:
    """``totals/...``: the running totals' registry, snapshots and publish records (all days)."""
    return "/".join((TOTALS_DIR, *parts))


TOTALS_LEASE = "totals"  # lease_key(TOTALS_LEASE): one fold / stat publish at a time


def online_time_path(end: dt.date, *parts: str) -> str:
    """``online_time/<YYYY-MM-DD>/...``: the window ending ``end``."""
    return "/".join(("online_time", end.isoformat(), *parts))


def shard_path(end: dt.date, index: int) -> str:
    """Shard ``index`` of the window: an uncompressed Arrow IPC file, read once by ``compute_shard``."""
    return online_time_path(end, "shards", f"shard-{index}.arrow")


def result_path(end: dt.date, index: int) -> str:
    return online_time_path(end, "results", f"part-{index}.parquet")


REPORTS_DIR = "reports"


def report_path(day: dt.date) -> str:
    """``reports/<YYYY-MM-DD>.json``: the day's verification report."""
    return f"{REPORTS_DIR}/{day.isoformat()}.json"


def safe_part(part: object) -> str:
    """A single path component: ``/`` would make folders, so it is replaced."""
    return str(part).replace("/", "_")


def alert_path(dag_id: str, run_id: str, name: str) -> str:
    """``alerts/<dag_id>/<run_id>/<name>``."""
    return "/".join(("alerts", safe_part(dag_id), safe_part(run_id), safe_part(name)))


def log_file_name(day: dt.date) -> str:
    """``YYYY-MM-DD.log``: one day of action logs."""
    return f"{day.isoformat()}.log"
