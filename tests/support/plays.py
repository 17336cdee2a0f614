"""Helpers for the play-statistics tests: plays as the collector writes them, categories in MySQL,
a whole day's run, document comparison. Fixtures (Redis, MariaDB, mongomock) are in conftest.py."""

from __future__ import annotations

import os

import ujson

from video_analytics.conventions import endlist_key
from video_analytics.plays import close, diff

GOOD_S = {"starttime": "2014-01-07 10:00:00", "country": "CN", "region": "Guangdong", "city": "Shenzhen",
          "ip": "10.0.0.1", "os": "Linux", "browser": "Chrome", "flow": 100.5, "comprate": 0.5}


def mysql_hook(db: str):
    """Airflow's MySqlHook on the scratch database ``db``."""
    from airflow.providers.mysql.hooks.mysql import MySqlHook

    return MySqlHook(mysql_conn_id="video_mysql", schema=db)


class CountingHook:
    """A real MySqlHook that counts the statements it runs."""

    def __init__(self, hook):
        self.hook = hook
        self.calls: list[tuple[str, list]] = []

    def get_records(self, sql, parameters=None):
        self.calls.append((sql, list(parameters or [])))
        return self.hook.get_records(sql, parameters=parameters)


def mysql_conn(db: str | None = None):
    """A MySQLdb connection to the local MariaDB as the project's user (autocommit)."""
    import MySQLdb

    kw = dict(host="127.0.0.1", port=int(os.environ.get("VIDEO_MYSQL_PORT", "3306")), user="video",
              passwd="video", charset="utf8")
    conn = MySQLdb.connect(**kw, **({"db": db} if db else {}))
    conn.autocommit(True)  # no open transaction may hold a lock on a scratch database when it is dropped
    return conn


def redis_client(db: int):
    """A client on the local Redis, database ``db``."""
    import redis

    return redis.Redis(host="127.0.0.1", port=int(os.environ.get("VIDEO_REDIS_PORT", "6379")), db=db,
                       decode_responses=True)


def categories(db: str, vinfo: list[tuple[str, int]], vsort: list[tuple[int, str | None]]) -> None:
    conn = mysql_conn(db)
    cur = conn.cursor()
    cur.execute("CREATE TABLE IF NOT EXISTS vsort (id INT PRIMARY KEY, kid VARCHAR(64) NULL)")
    cur.execute("CREATE TABLE IF NOT EXISTS vinfo (vid VARCHAR(64) PRIMARY KEY, vsortid INT)")
    if vsort:
        cur.executemany("REPLACE INTO vsort (id, kid) VALUES (%s, %s)", vsort)
    if vinfo:
        cur.executemany("REPLACE INTO vinfo (vid, vsortid) VALUES (%s, %s)", vinfo)
    conn.close()


def put_play(r, day: str, key: str, s=GOOD_S, j=((1, 1), (2, 1)), z1=None, raw_s=None, raw_j=None,
             push: bool = True) -> None:
    """One play as the collector writes it (``s=None`` / ``j=None`` leave the value out)."""
    if raw_s is not None or s is not None:
        r.set(key + "_S", raw_s if raw_s is not None else ujson.dumps(dict(s)))
    if raw_j is not None or j is not None:
        r.set(key + "_J", raw_j if raw_j is not None else ujson.dumps([list(x) for x in j]))
    if z1 is not None:
        r.set(key + "_z1", z1)
    if push:
        r.rpush(endlist_key(day), key)


def run_day(root, r, hook, day, mongo_db=None, cleanup=False, max_quarantine_rate=0.01):
    """ingest, rollup, (publish), verify, (cleanup) of one day, as the DAG runs them."""
    from include.plays.cleanup import cleanup as run_cleanup
    from include.plays.ingest_plays import ingest_plays
    from include.plays.publish import publish
    from include.plays.rollup_videos import rollup_videos
    from include.plays.verify import verify_plays

    out = {"ingest": ingest_plays(root, r, hook, day, mongo_db=mongo_db), "rollup": rollup_videos(root, day, r)}
    if mongo_db is not None:
        out["publish"] = publish(root, day, mongo_db, r)
    out["verify"] = verify_plays(root, day, mongo_db, max_quarantine_rate=max_quarantine_rate, redis=r)
    if cleanup:
        from include.verify import write_report
        from video_analytics.conventions import parse_ymd

        write_report(root, parse_ymd(day), {"plays": out["verify"]})
        out["cleanup"] = run_cleanup(root, r, day)
    return out


def doc_mismatches(expected: dict, got: dict, skip=lambda coll: False) -> list[str]:
    """Differences between two ``{collection: {_id: doc}}`` maps (floats 1e-9 relative)."""
    out = []
    for coll in sorted(set(expected) | set(got)):
        if skip(coll):
            continue
        e, g = expected.get(coll, {}), got.get(coll, {})
        if set(e) != set(g):
            out.append(f"{coll}: ids differ {sorted(set(e) ^ set(g), key=str)[:5]}")
            continue
        for _id in e:
            if not close(e[_id], g[_id]):
                out.append(f"{coll}/{_id}: {diff(e[_id], g[_id])}")
    return out
