"""The sample generators' output is pinned: the same seed gives the same bytes as before their split."""

from __future__ import annotations

import hashlib
from datetime import date

from include.sample_logs import generate_logs
from include.sample_plays import generate_plays

LOGS_SHA256 = "a8edf146c082c17ebf891d26a49d510412bd74f837df15fd00389a170bee5494"
PLAYS_SHA256 = "d6be126e22daa94a3ce93479c195d08f4584c8420c4aa8360a41fff5bcc08d3a"


def test_generate_logs_output_is_pinned(tmp_path):
    out = generate_logs(str(tmp_path), date(2014, 1, 7), days=3, users=300, seed=11, events=20000)
    h = hashlib.sha256()
    for name in sorted(p.name for p in tmp_path.iterdir()):
        h.update(name.encode() + b"\0" + (tmp_path / name).read_bytes())
    h.update(repr(sorted((k, v) for k, v in out.items() if k not in ("log_dir", "files"))).encode())
    assert h.hexdigest() == LOGS_SHA256


def _dump(redis) -> bytes:
    """Every key of the scratch database with its value, lists in order, hashes sorted."""
    parts = []
    for key in sorted(redis.keys("*")):
        kind = redis.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            value = [redis.get(key)]
        elif kind == "list":
            value = redis.lrange(key, 0, -1)
        else:
            value = sorted(redis.hgetall(key).items())
        parts.append(repr((key, kind, value)))
    return "\n".join(parts).encode()


def test_generate_plays_output_is_pinned(redis_db):
    out = generate_plays(redis_db, None, "20140107", plays=3000, seed=11, bad_rate=0.01, dup_rate=0.01,
                         model="pooled")
    out.pop("seconds")
    h = hashlib.sha256(_dump(redis_db))
    h.update(repr(sorted(out.items())).encode())
    assert h.hexdigest() == PLAYS_SHA256
