"""Sample plays (issue 24): realistic by default, the pooled best case unchanged."""

from __future__ import annotations

import hashlib

import ujson

from include.sample_plays import generate_plays

DAY = "20140107"


def _digest(r) -> str:
    h = hashlib.sha256()
    for k in sorted(r.keys()):
        t = r.type(k)
        v = r.get(k) if t == "string" else r.lrange(k, 0, -1) if t == "list" else sorted(r.hgetall(k).items())
        h.update(repr((k.encode(), v if t != "string" else v.encode())).encode())
    return h.hexdigest()


def test_pooled_model_writes_what_it_always_wrote(redis_db):
    made = generate_plays(redis_db, None, DAY, plays=3000, seed=5, bad_rate=0.02, dup_rate=0.01, model="pooled")
    assert made["segment_patterns"] == 750
    # sha256 of every key and value, as main (0129b99) wrote them before the realistic model existed
    assert _digest(redis_db) == "f1131300c3627948d444cb24cf119f9178273c2e7355bb4ac98fef7586f4ab6d"


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
