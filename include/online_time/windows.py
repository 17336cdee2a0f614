"""Windows side by side (1, 7 and 30 days by default) from the per-day summaries of one run.

Each window ``W`` ending ``end`` goes to its own folder, ``online_time/<end>/w<W>/``:
``online_time.parquet`` (userid, online_seconds, sessions), ``rejects.parquet`` (the rejected rows of
the files read for it, reused days included) and ``totals.json`` (``users``, ``online_seconds``,
``sessions``, ``online_seconds_per_user``, rows and rejects, ``days_parsed``, ``days_reused``,
``mode``: ``summaries`` or ``full`` when a file held a time outside its day). A run of one window
never touches another's folder.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import date

import pyarrow as pa

from include.errors import RejectThresholdExceeded
from include.online_time.compute_shard import RESULT_SCHEMA
from include.online_time.logs import REJECT_SCHEMA, column, missing_path, numpy_of, window_missing
from include.online_time.sort_and_partition import check_reject_rate, check_window
from include.online_time.summaries import SummaryCache, combine_window, file_day, window_rows
from include.storage import DataRoot
from video_analytics import conventions as conv
from video_analytics import online_time as core

log = logging.getLogger(__name__)

WINDOWS = (1, 7, 30)


def window_path(end: date, window_days: int, *parts: str) -> str:
    """``online_time/<end>/w<W>/...``: one window's results."""
    return conv.online_time_path(end, f"w{window_days}", *parts)


def _full(root: DataRoot, log_dir: str, end: date, window_days: int, lookback_days: int, rules: core.Rules,
          missing_days: list[dict]) -> tuple[pa.Table, pa.Table, dict]:
    """The window computed from all its files (``pipeline``), in a scratch data root holding the window's
    accepted-missing records: ``(result, rejects, partition)``."""
    from include.online_time.pipeline import compute

    with tempfile.TemporaryDirectory(prefix="online-time-full-") as tmp:
        scratch = DataRoot(tmp)
        for m in missing_days:
            d = date.fromisoformat(m["day"])
            scratch.write_json(root.read_json(missing_path(d)), missing_path(d))
        part, totals = compute(scratch, log_dir, end, window_days, lookback_days, 1.0,
                               {"min_gap": rules.min_gap, "timeout": rules.timeout,
                                "post_multiplier": rules.post_multiplier})
        result = scratch.read_table(totals["result_path"])
        rejects = scratch.read_table(part["rejects_path"])
    return result, rejects, part


def run_window(root: DataRoot, cache: SummaryCache, log_dir: str, end: date, window_days: int,
               lookback_days: int = conv.LOOKBACK_DAYS, *, report: bool = False) -> tuple[dict, pa.Table]:
    """One window from the summaries (the full computation when they cannot do): ``(totals, result)``.
    ``report``: also write it as the day's report, ``online_time/<end>/`` (``write_report``)."""
    missing_days = window_missing(root, log_dir, end, window_days)
    files = check_window(log_dir, end, window_days, lookback_days, missing_days)
    done = combine_window(cache, files, end, window_days)
    if done is None:
        result, rejects, part = _full(root, log_dir, end, window_days, lookback_days, cache.rules, missing_days)
        rows_in, rows_parsed, mode = part["rows_in"], part["rows_parsed"], "full"
        parsed, reused = sorted(file_day(f).isoformat() for f in files), []  # it reads every file
    else:
        (users, online, sessions), days = done
        result = pa.Table.from_arrays([column(users, pa.int64()), column(online, pa.int64()),
                                       column(sessions, pa.int64())], schema=RESULT_SCHEMA)
        rejects, rows_in, rows_parsed = window_rows(days)
        rejects = REJECT_SCHEMA.empty_table() if rejects is None else rejects
        mode = "summaries"
        parsed = [d.day.isoformat() for d in days if d.parsed]
        reused = [d.day.isoformat() for d in days if not d.parsed]
    root.remove(window_path(end, window_days))
    rejects_path = window_path(end, window_days, "rejects.parquet")
    root.write_table(rejects, rejects_path)
    result_path = window_path(end, window_days, "online_time.parquet")
    root.write_table(result, result_path)
    online = int(numpy_of(result.column("online_seconds")).sum())
    totals = {"end": end.isoformat(), "window_days": window_days, "lookback_days": lookback_days,
              "users": result.num_rows, "online_seconds": int(online),
              "sessions": int(numpy_of(result.column("sessions")).sum()),
              "online_seconds_per_user": online / result.num_rows if result.num_rows else None,
              "rows_in": rows_in, "rows_parsed": rows_parsed, "rejects": rejects.num_rows,
              "days_parsed": parsed, "days_reused": reused, "mode": mode, "files": files,
              "result_path": result_path, "rejects_path": rejects_path, "missing_days": missing_days}
    root.write_json(totals, window_path(end, window_days, "totals.json"))
    if report:
        write_report(root, end, totals)
    return totals, result


def write_report(root: DataRoot, end: date, totals: dict) -> dict:
    """The window as the day's report in ``online_time/<end>/`` (what ``verify`` and the day pages read,
    as a full run writes it): ``partition.json`` (mode ``summaries``), the result, rejects, ``totals.json``."""
    from include.online_time.sort_and_partition import clear_run

    clear_run(root, end)
    rejects_path = conv.online_time_path(end, "rejects.parquet")
    root.copy_file(totals["rejects_path"], rejects_path)
    result_path = conv.online_time_path(end, "online_time.parquet")
    root.copy_file(totals["result_path"], result_path)
    common = {"end": end.isoformat(), "rows_in": totals["rows_in"], "rows_parsed": totals["rows_parsed"],
              "rejects": totals["rejects"], "distinct_users_in_window": totals["users"],
              "missing_days": totals["missing_days"]}
    root.write_json({**common, "run_dir": conv.online_time_path(end), "window_days": totals["window_days"],
                     "lookback_days": totals["lookback_days"], "shards": [], "mode": "summaries",
                     "rejects_path": rejects_path, "files": totals["files"]},
                    conv.online_time_path(end, "partition.json"))
    report = {**common, "users": totals["users"], "online_seconds": totals["online_seconds"],
              "sessions": totals["sessions"], "shards": 0, "shards_with_results": 0, "result_path": result_path,
              "published": None, "window_days": totals["window_days"]}
    root.write_json(report, conv.online_time_path(end, "totals.json"))
    return report


def run_windows(root: DataRoot, log_dir: str, end: date, windows=WINDOWS, lookback_days: int = conv.LOOKBACK_DAYS,
                max_reject_rate: float = conv.MAX_REJECT_RATE, rules: core.Rules | None = None,
                cache: SummaryCache | None = None, *, skip_missing: bool = False) -> dict[int, dict]:
    """Every window of ``windows`` ending ``end`` from one set of summaries: ``{W: totals}``. Raises
    ``RejectThresholdExceeded`` after writing them all when a window's rejects pass the threshold.

    ``skip_missing``: a window with a missing log file (not accepted as lost) is not computed: its folder
    holds only ``skipped.json`` naming the files, and its entry is ``{"skipped": why}`` (the first weeks of
    a deployment have no 30 days of logs). Otherwise the ``FileNotFoundError`` is raised."""
    cache = cache or SummaryCache(root, rules or core.Rules())
    out, errors = {}, []
    for w in sorted(set(windows)):
        try:
            out[w], _ = run_window(root, cache, log_dir, end, w, lookback_days)
        except FileNotFoundError as exc:
            if not skip_missing:
                raise
            log.warning("online-time window w%d ending %s skipped: %s", w, end, exc)
            root.remove(window_path(end, w))
            out[w] = {"end": end.isoformat(), "window_days": w, "skipped": str(exc)}
            root.write_json(out[w], window_path(end, w, "skipped.json"))
            continue
        try:
            check_reject_rate(out[w]["rejects"], out[w]["rows_in"], max_reject_rate, root.uri(out[w]["rejects_path"]))
        except RejectThresholdExceeded as exc:
            errors.append(f"window {w}: {exc}")
    if errors:
        raise RejectThresholdExceeded("; ".join(errors))
    log.info("online-time windows %s of %s: parsed %s, reused %s", sorted(out), end, cache.parsed(), cache.reused())
    return out
