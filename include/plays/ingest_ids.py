"""``ingest_plays``, between the passes: the categories of the day's distinct vids (the day's stored answers
first, then the kid cache and MySQL, batched) and one atomic play-id reservation for the new plays."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from include.plays.categories import resolve_kids
from include.plays.ingest_run import IngestRun
from include.plays.play_ids import reserve_ids
from include.plays.store import read_frame, write_frame
from video_analytics import plays as core

_NO_LOOKUP = {"kid_cache_hits": 0, "kid_mysql_lookups": 0, "kid_mysql_queries": 0, "round_trips": 0}


def day_kids(run: IngestRun) -> None:
    """``kids.parquet`` for the day's vids; sets ``run.kids`` (vid -> kid), ``run.bad_kid`` (vids whose kid is
    not a usable name) and ``run.kstats``."""
    rel = run.rel("kids.parquet")
    stored: dict[str, str] = {}
    sources: dict[str, str] = {}
    if run.root.exists(rel):
        kdf = read_frame(run.root, rel)
        stored = dict(zip(kdf["vid"].tolist(), kdf["kid"].tolist(), strict=True))
        sources = dict(zip(kdf["vid"].tolist(), kdf["source"].tolist(), strict=True))
    need = [v for v in run.vids_seen if v not in stored]
    kids, from_mysql, kstats = resolve_kids(run.redis, run.mysql_hook, need, run.batch) if need else (
        {}, set(), dict(_NO_LOOKUP))
    run.rt.n += kstats.pop("round_trips")
    for v in kids:
        sources[v] = "mysql" if v in from_mysql else "cache"
    stored.update(kids)
    write_frame(run.root, pd.DataFrame({"vid": list(stored), "kid": [stored[v] for v in stored],
                                        "source": [sources.get(v, "cache") for v in stored]}, dtype=object),
                rel, schema={"vid": pa.string(), "kid": pa.string(), "source": pa.string()})
    run.kids, run.kstats = stored, kstats
    run.bad_kid = {v for v in run.vids_seen if not core.safe_name(stored.get(v, ""))}


def reserve(run: IngestRun) -> None:
    """One atomic reservation for the new plays of the day (in ``T_endlist_D`` order); sets ``run.counts``
    (new plays per vid with a usable kid), ``run.before`` (the last id before the reservation) and
    ``run.astats``."""
    run.counts = {v: c for v, c in run.new_count.items() if v not in run.bad_kid}
    if run.counts:
        run.before, run.astats = reserve_ids(run.redis, run.root, run.counts, run.day, run.mongo_db, run.batch)
        run.rt.n += run.astats.pop("round_trips")
