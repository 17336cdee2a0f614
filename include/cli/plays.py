"""Commands of the plays part and the day's end: ``plays``, ``verify``, ``cleanup``, ``export-docs``."""

from __future__ import annotations

import json
from typing import Any

from include.cli.common import data_root, day_lease, emit, fail
from video_analytics import conventions as conv


def plays(args) -> int:
    """Ingest + rollup (+ publish when ``video_mongo`` is defined) + verify of one day."""
    from include import settings
    from include.plays.ingest_plays import ingest_plays
    from include.plays.publish import publish
    from include.plays.rollup_videos import rollup_videos
    from include.plays.verify import verify_plays

    day = conv.ymd(args.date)
    root = data_root(args)
    from include.prune import refuse_pruned  # a day whose raw snapshot was pruned cannot be re-run
    refuse_pruned(root, day)
    mongo = settings.mongo_db()
    redis, lease = day_lease(args, "cli")
    with lease:
        out: dict[str, Any] = {"ingest": ingest_plays(root, redis, settings.mysql_hook(), day, mongo_db=mongo)}
        out["rollup"] = rollup_videos(root, day, redis)
        if mongo is not None:
            out["publish"] = publish(root, day, mongo, redis, force=args.republish)
        out["verify"] = verify_plays(root, day, mongo, max_quarantine_rate=args.max_quarantine_rate, redis=redis)
    emit(json.dumps(out, indent=2, default=str))
    return 0 if all(c["ok"] for c in out["verify"]) else 1


def verify(args) -> int:
    """``verify --date D``: the DAG's verify task (``reports/D.json``); ``verify --all``: the full
    history check of the plays (``include.plays.verify.verify_history``)."""
    from include import settings
    from include.errors import VerificationFailed

    root = data_root(args)
    if args.all:
        from include.plays.verify import verify_history

        out = verify_history(root, settings.mongo_db(), settings.redis_client())
        root.write_json({"ok": all(c["ok"] for c in out), "checks": out}, conv.totals_path("verify-all.json"))
        emit(json.dumps(out, indent=2, default=str))
        return 0 if all(c["ok"] for c in out) else 1
    from include.verify import summary, verify_day

    redis, lease = day_lease(args, "cli")
    with lease:
        try:
            verify_day(root, args.date, window_days=args.window, max_reject_rate=args.max_reject_rate,
                       max_quarantine_rate=args.max_quarantine_rate, mongo_db=settings.mongo_db(), redis=redis)
        except VerificationFailed:
            pass  # the report says which checks failed
    report = root.read_json(conv.report_path(args.date))
    emit(summary(report) + f"\nreport: {root.uri(conv.report_path(args.date))}")
    return 0 if report["ok"] else 1


def cleanup(args) -> int:
    """The DAG's cleanup: refused unless the day's verification report passed for its current ingest."""
    from include.errors import CleanupRefused
    from include.plays.cleanup import cleanup as run

    root = data_root(args)
    redis, lease = day_lease(args, "cli")
    with lease:
        try:
            out = run(root, redis, conv.ymd(args.date))
        except CleanupRefused as exc:
            return fail("cleanup", f"refused: {exc}", 1)
    emit(json.dumps(out))
    return 0


def export_docs(args) -> int:
    from include.plays.documents import export_docs as run

    emit(json.dumps(run(data_root(args), args.out)))
    return 0
