"""``include.plays.mget.fetch_arrays`` on the real Redis: the C reader of MGET replies gives what redis-py's
pipeline gives, for every kind of value, and leaves the connection clean."""

from __future__ import annotations

import pyarrow as pa
import pytest
import redis as redis_mod

from include.plays import mget
from include.plays.decoders import Counter
from include.plays.ingest_plays import MGET_BATCH, ingest_plays
from include.storage import DataRoot
from tests.support.plays import categories, mysql_hook, put_play
from video_analytics import play_fast as pf

pytestmark = pytest.mark.skipif(not pf.HAVE_FAST, reason="the C module is not built here")


def _raw(redis_db):
    from include.settings import sibling_client

    return sibling_client(redis_db, decode_responses=False, protocol=2)


def _values(r):
    keys = [f"100000{i % 7}_{i}" for i in range(40)] + ["1000001_é", "1000001_big", "1000001_list", "1000001_gone",
                                                       "1000001_\r\n$-1\r\n*1", "1000001_\x00/../"]
    odd = {"1000001_é_S": "深圳".encode(), "1000001_\r\n$-1\r\n*1_J": b"[[3,1]]", "1000001_\x00/../_S": b"{}", "1000003_3_J": b"a\r\n$-1\r\n*2\r\nb", "1000004_4_S": b"",
           "1000005_5_z1": b"\x00\xff\x00", "1000001_big_J": b"[[1,1]," * 900_000 + b"[2,1]]"}
    for i, k in enumerate(keys[:40]):
        r.set(k + "_S", b'{"n":%d}' % i)
        if i % 3:
            r.set(k + "_J", b"[[%d,1]]" % (i + 1))
        if i % 5 == 0:
            r.set(k + "_z1", f"用户 {i}")
    r.mset(odd)
    r.rpush("1000001_list_S", b"x")  # not a string: MGET gives nil
    return keys


@pytest.mark.parametrize("batch", [1, 7, 1000])
def test_the_c_reader_gives_what_redis_py_gives(redis_db, batch):
    raw = _raw(redis_db)
    keys = _values(raw)
    rt = Counter()
    got = mget.fetch_arrays(raw, keys, batch, rt)
    want = [pa.array(raw.mget([k + s for k in keys]), pa.binary()) for s in mget.SUFFIXES]
    for g, w in zip(got, want, strict=True):
        assert g.type == pa.binary()
        assert g.to_pylist() == w.to_pylist()
    assert rt.n == -(-len(keys) // batch)  # one round trip a batch
    assert got[1].to_pylist()[keys.index("1000001_big")].startswith(b"[[1,1],")  # 6 MB: the buffer grew
    assert raw.ping() and raw.get("1000004_4_S") == b""  # the connection is clean afterwards


def test_a_buffer_grown_for_huge_values_is_not_kept(redis_db, monkeypatch):
    raw = _raw(redis_db)
    keys = _values(raw)
    monkeypatch.setattr(mget, "_RECV_KEEP", mget._RECV_MIN)  # noqa: SLF001
    mget._BUF.clear()  # noqa: SLF001
    got = mget.fetch_arrays(raw, keys[:40], 1000, Counter())
    assert mget._BUF and len(mget._BUF[0]) <= mget._RECV_MIN  # noqa: SLF001 - small batches: kept for the next
    got = mget.fetch_arrays(raw, keys, 1000, Counter())  # the 6 MB value: the buffer grew past the first one
    assert len(got[1].to_pylist()[keys.index("1000001_big")]) > 5_000_000
    assert not mget._BUF  # noqa: SLF001 - dropped, not kept for the life of the process


def test_an_error_reply_is_a_redis_error_and_the_connection_is_dropped(redis_db):
    raw = _raw(redis_db)
    keys = _values(raw)
    conn = raw.connection_pool.get_connection()
    conn.send_command("CLIENT", "SETNAME", "mget-test")
    assert conn.read_response() == b"OK"
    raw.connection_pool.release(conn)
    redis_db.execute_command("ACL", "SETUSER", "mget_reader", "on", ">pw", "~*", "+@all", "-mget")
    try:
        limited = redis_mod.Redis(host=raw.connection_pool.connection_kwargs["host"],
                                  port=raw.connection_pool.connection_kwargs["port"],
                                  db=raw.connection_pool.connection_kwargs["db"], username="mget_reader",
                                  password="pw", protocol=2)
        with pytest.raises(redis_mod.exceptions.ResponseError, match="mget"):
            mget.fetch_arrays(limited, keys, 10, Counter())
        assert limited.get("1000004_4_S") == b""  # the next command gets its own reply
    finally:
        redis_db.execute_command("ACL", "DELUSER", "mget_reader")


def test_a_connection_without_a_plain_socket_uses_the_pipeline(redis_db, monkeypatch):
    raw = _raw(redis_db)
    keys = _values(raw)
    monkeypatch.setattr(mget, "_fetch_socket", lambda *a: None)
    got = mget.fetch_arrays(raw, keys, 10, Counter())
    assert got[0].to_pylist() == raw.mget([k + "_S" for k in keys])


def test_a_batch_that_times_out_is_sent_again_on_a_new_connection(tmp_path, caplog):
    """A server that does not answer in time (paused): the batch is sent again on a fresh connection (the
    half-read one is dropped); a server that stays silent is a Redis timeout error after the attempts."""
    from tests.support.servers import redis_server

    with redis_server(tmp_path) as (port, _proc):
        admin = redis_mod.Redis(port=port)
        admin.mset({"1000001_a_S": b"s", "1000001_a_J": b"[[1,1]]"})
        raw = redis_mod.Redis(port=port, socket_timeout=0.5, protocol=2)
        admin.execute_command("CLIENT", "PAUSE", 800, "ALL")
        with caplog.at_level("WARNING"):
            got = mget.fetch_arrays(raw, ["1000001_a"], 10, Counter())
        assert [a.to_pylist() for a in got] == [[b"s"], [b"[[1,1]]"], [None]]
        assert "sending it again" in caplog.text
        admin.execute_command("CLIENT", "PAUSE", 3000, "ALL")
        with pytest.raises(redis_mod.exceptions.TimeoutError):
            mget.fetch_arrays(raw, ["1000001_a"], 10, Counter(), attempts=2)
        admin.execute_command("CLIENT", "UNPAUSE")
        assert raw.get("1000001_a_S") == b"s"


def test_lrange_through_the_c_reader_gives_what_redis_py_gives(redis_db):
    """``mget.lrange_array`` (``T_endlist_D`` read off the socket): the entries redis-py reads, for any range,
    a missing list, and odd entries; a key of another type is a Redis error and the connection stays clean."""
    raw = _raw(redis_db)
    odd = ["1000001_é", "", "1000001_\r\n$-1\r\n*1", "1000001_\x00/../", "x" * 100_000]
    raw.rpush("T_endlist_x", *[f"100000{i % 7}_{i}" for i in range(250)], *odd)
    for start, stop in ((0, -1), (0, 99), (100, 199), (250, 10_000), (300, 400), (-3, -1)):
        got = mget.lrange_array(raw, "T_endlist_x", start, stop)
        assert got.type == pa.binary() and got.to_pylist() == raw.lrange("T_endlist_x", start, stop)
    assert mget.lrange_array(raw, "T_endlist_none", 0, 99).to_pylist() == []
    raw.set("T_endlist_str", b"x")
    with pytest.raises(redis_mod.exceptions.ResponseError, match="WRONGTYPE"):
        mget.lrange_array(raw, "T_endlist_str", 0, 9)
    assert raw.ping() and raw.lrange("T_endlist_x", 0, 0) == [b"1000000_0"]


def test_the_ingest_stays_within_five_round_trips_per_1000_plays(redis_db, mysql_db, tmp_path):
    """Issue 24's bound on Redis round trips, at the ingest's own ``MGET_BATCH``: a day of 3 batches and a bit,
    fetched in-process (no decoder processes), every round trip counted (LRANGE, MGETs, categories, ids)."""
    n = 3 * MGET_BATCH + 17
    categories(mysql_db, [("1000001", 1)], [(1, "music")])
    pipe = redis_db.pipeline(transaction=False)
    for i in range(n):
        put_play(pipe, "20140107", f"1000001_{i}")
    pipe.execute()
    ing = ingest_plays(DataRoot(str(tmp_path / "r")), redis_db, mysql_hook(mysql_db), "20140107", workers=0)
    assert ing["ingested"] == n
    assert -(-n // MGET_BATCH) <= ing["redis_round_trips"] <= 5 * n / 1000, ing["redis_round_trips"]  # MGETs at least
