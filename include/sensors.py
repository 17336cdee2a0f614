"""What the DAG's sensors poke: the window's finished logs and the collector's finished-plays list."""

from __future__ import annotations

import datetime as dt
import logging

from video_analytics import conventions as conv
from video_analytics import online_time as core

log = logging.getLogger(__name__)


def logs_ready(log_dir: str, day: dt.date, window_days: int, lookback_days: int, root=None) -> bool:
    """True once every log of the window ending ``day`` is complete (CONTRACT §1: its ``.done``
    marker or the next day's file) or accepted as lost in the data root ``root``.

    Until then it logs which days it waits for; a missing file may still come, or an operator
    accepts it as lost (``video-analytics accept-missing``) and the next poke goes on.
    """
    from include.online_time.logs import COMPLETE, window_status

    _, window = core.window_dates(day, window_days, lookback_days)
    waiting = {d: s for d, s in window_status(log_dir, window, root).items()
               if s not in COMPLETE and s != "accepted missing"}
    if waiting:
        (log.info if set(waiting) == {day} else log.warning)("waiting for the window's logs in %s: %s%s", log_dir,
                 ", ".join(f"{conv.log_file_name(d)} ({s})" for d, s in waiting.items()),
                 "" if set(waiting) == {day} else
                 "; a day lost for good: video-analytics accept-missing --date D --data-root ROOT")
    return not waiting


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
