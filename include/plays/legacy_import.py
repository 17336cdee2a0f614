"""``video-analytics legacy-import``: the legacy job's all-time totals imported as the baseline of the
running totals (CONTRACT §7; docs/CUTOVER.md), from a ``mongoexport`` dump or the live ``video_mongo``.

The whole input is read and checked, and the baseline staged in a local temporary folder, before anything
in the data root changes; a malformed document refuses the import whole, with one line naming the file
and line (or collection and ``_id``) and the field. ``include.plays.baseline.install`` then makes it the
baseline in one atomic registry write.
"""

from __future__ import annotations

import os
import tempfile
import time


def add_parser(sub) -> None:
    """``video-analytics legacy-import``'s parser under ``sub`` (``include.cli.args``; its handler: ``cli``)."""
    li = sub.add_parser("legacy-import", help="import the legacy job's all-time totals as the baseline "
                                              "(CONTRACT §7, docs/CUTOVER.md)")
    src = li.add_mutually_exclusive_group(required=True)
    src.add_argument("--dump", metavar="DIR", help="a mongoexport dump: one <collection>.json per collection")
    src.add_argument("--mongo", action="store_true", help="the live database behind the video_mongo connection")
    src.add_argument("--new-site", action="store_true",
                     help="this site never ran the legacy job: start without a baseline")
    li.add_argument("--data-root", help="the data root (default: the data_root Variable, AIRFLOW_VAR_DATA_ROOT)")
    li.add_argument("--replace", action="store_true", help="replace a different baseline imported before")
    li.add_argument("--tmp", help="where to stage the import (default: the system's temporary folder)")


def cli(args) -> int:
    """``video-analytics legacy-import``: what was done, as JSON."""
    import json

    from include.cli.common import emit

    emit(json.dumps(command(args), default=str))
    return 0


def command(args) -> dict:
    """Run ``legacy-import`` from parsed arguments; returns what was done."""
    from include import settings
    from include.cli.common import data_root

    root = data_root(args)
    redis = settings.redis_client() if settings.has_connection(settings.REDIS_CONN_ID) else None
    if args.new_site:
        return new_site(root, args.replace, redis)
    if args.dump:
        return import_dump(root, args.dump, args.replace, redis, args.tmp)
    db = settings.mongo_db()
    if db is None:
        raise LookupError(f"legacy-import --mongo: connection {settings.MONGO_CONN_ID!r} is not defined")
    return import_mongo(root, db, args.replace, redis, args.tmp)


def import_dump(root, dump_dir: str, replace: bool = False, redis=None, tmp: str | None = None) -> dict:
    from include.plays.legacy_dump import dump_collections

    return _import(root, dump_collections(dump_dir), f"mongoexport dump {os.path.abspath(dump_dir)}", replace,
                   redis, tmp)


def import_mongo(root, mongo_db, replace: bool = False, redis=None, tmp: str | None = None) -> dict:
    from include.plays.legacy_dump import mongo_collections

    return _import(root, mongo_collections(mongo_db), f"video_mongo database {mongo_db.name}", replace, redis, tmp)


def new_site(root, replace: bool = False, redis=None) -> dict:
    """Record that this site starts without legacy totals (publishing is then allowed without a baseline)."""
    from include.plays.baseline import NEW_SITE, install

    meta = {"last_day": None, "fingerprint": NEW_SITE["fingerprint"], "source": "new site", "rows": {}}
    return install(root, None, meta, replace, redis)


def _import(root, collections, source: str, replace: bool, redis, tmp: str | None) -> dict:
    from include.plays.baseline import install
    from include.plays.legacy_dump import Refused
    from include.plays.legacy_stage import Stage
    from video_analytics import legacy_stat as legacy

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="legacy-import-", dir=tmp) as work:
        stage = Stage(work)
        last, days = None, 0
        try:
            for _uid, kind, items in collections:
                if kind == "stat":
                    stage.add_stat(_uid, items)
                    continue
                for where, _id in items:
                    try:
                        day = legacy.vdaily_day(_id)
                    except legacy.Malformed as exc:
                        raise Refused(f"{where}: {exc}") from None
                    last = day if last is None or day > last else last
                    days += 1
            staged = stage.close()
        finally:
            stage.abort()
        if not stage.rows["vid"] and not stage.rows["uid"]:
            raise Refused(f"{source}: no <uid>_stat documents: nothing to import")
        if last is None:
            raise Refused(f"{source}: no <uid>_vdaily documents: the legacy job's last day is unknown")
        meta = {"last_day": last, "fingerprint": stage.fingerprint(), "source": source, "rows": stage.rows}
        out = install(root, staged, meta, replace, redis)
    return {**out, "source": source, "rows": stage.rows, "vdaily_documents": days,
            "seconds": round(time.perf_counter() - t0, 3)}
