"""Sample plays (issue 24): the realistic model is the default (the pooled one is pinned in
test_sample_pinned.py)."""

from __future__ import annotations

import ujson

from include.sample_plays import generate_plays

DAY = "20140107"


def test_realistic_model_is_the_default(redis_db):
    made = generate_plays(redis_db, None, DAY, plays=2000, seed=5)
    assert made["model"] == "realistic" and made["segment_patterns"] > 0.8 * 2000
    keys = redis_db.lrange(f"T_endlist_{DAY}", 0, -1)
    s = [ujson.loads(v) for v in redis_db.mget([k + "_S" for k in keys]) if v is not None and v.startswith("{")]
    j = [ujson.loads(v) for v in redis_db.mget([k + "_J" for k in keys]) if v is not None and v.startswith("[[")]
    assert any(type(x.get("region")) is int for x in s) and any(type(x.get("region")) is str for x in s)
    assert any(not str(x.get("city", "")).isascii() for x in s) and any(not str(x.get("browser", "")).isascii() for x in s)
    assert all(type(x["flow"]) is int for x in s if "flow" in x and x["flow"] not in ("n/a",))
    assert max(len(p) for p in j) > 1000 and min(len(p) for p in j) < 5
    assert sum(len(p) for p in j) / len(j) > 100
