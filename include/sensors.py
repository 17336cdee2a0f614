"""What the DAG's sensors poke: the day's log file and the collector's finished-plays list."""

from __future__ import annotations

import datetime as dt
import posixpath

import fsspec

from video_analytics import conventions as conv


def logs_ready(log_dir: str, day: dt.date, window_days: int, lookback_days: int) -> bool:
    """True once ``<log_dir>/<day>.log`` exists; then every earlier window file must exist too.

    Raises FileNotFoundError naming the missing window files (waiting would not bring them).
    """
    fs, base = fsspec.core.url_to_fs(log_dir)
    if not fs.exists(posixpath.join(base, conv.log_file_name(day))):
        return False
    from include.online_time.sort_and_partition import check_window

    check_window(log_dir, day, window_days, lookback_days)
    return True


def plays_ready(redis, day: str, root=None) -> bool:
    """True once the collector has written ``T_endlist_<day>``, or when the day's stored snapshot
    (``plays/<day>/snapshot/plays_raw.parquet``) holds plays; a folder without them is not enough.

    ``cleanup`` empties ``T_endlist_<day>`` (Redis then drops the key), so a re-run, clear or
    backfill of a processed day goes on from its snapshot in the data root.
    """
    if redis.exists(conv.endlist_key(day)):
        return True
    if root is None:
        return False
    from include.plays.store import stored_rows

    return stored_rows(root, conv.plays_path(day, "snapshot", "plays_raw.parquet")) > 0
