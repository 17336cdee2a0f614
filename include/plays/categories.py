"""Each vid's category (``kid``): the ``T_video_kid_info`` cache, then MySQL in batches (CONTRACT §2)."""

from __future__ import annotations

from importlib import resources

from include.plays.store import chunks
from video_analytics import plays as core
from video_analytics.conventions import KID_HASH

MYSQL_BATCH = 1000


def category_sql(n: int) -> str:
    """The batch category query for ``n`` vids, with ``n`` ``%s`` placeholders."""
    text = resources.files("include").joinpath("sql/category.sql").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return body.replace("{placeholders}", ",".join(["%s"] * n)).strip()


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def resolve_kids(redis, mysql_hook, vids: list[str], batch: int = 5000) -> tuple[dict[str, str], set, dict]:
    """Category per vid: ``T_video_kid_info`` first (batched HMGET), then one MySQL query per batch of
    misses; answers are written back to the cache. Returns ``(kids, vids answered by MySQL, stats)``."""
    stats = {"kid_cache_hits": 0, "kid_mysql_lookups": 0, "kid_mysql_queries": 0, "round_trips": 0}
    kids: dict[str, str] = {}
    misses: list[str] = []
    for chunk in chunks(vids, batch):
        vals = redis.hmget(KID_HASH, chunk)
        stats["round_trips"] += 1
        for v, k in zip(chunk, vals, strict=True):
            if k is None:
                misses.append(v)
            else:
                kids[v] = k
    stats["kid_cache_hits"] = len(kids)
    if misses:
        if hasattr(mysql_hook, "log_sql"):
            mysql_hook.log_sql = False  # a batch of 1,000 parameters per statement is not worth logging
        found: dict[str, str] = {}
        for chunk in chunks(misses, MYSQL_BATCH):
            rows = mysql_hook.get_records(category_sql(len(chunk)), parameters=list(chunk))
            stats["kid_mysql_queries"] += 1
            for vid, kid in sorted(rows or [], key=lambda r: (str(r[0]), r[1] is None, str(r[1]))):
                vid = _text(vid)
                if vid not in found:
                    found[vid] = core.NOKID if kid is None else _text(kid)
        answers = {v: found.get(v, core.NOKID) for v in misses}
        stats["kid_mysql_lookups"] = len(misses)
        for chunk in chunks(list(answers.items()), batch):
            redis.hset(KID_HASH, mapping=dict(chunk))
            stats["round_trips"] += 1
        kids.update(answers)
    return kids, set(misses), stats
