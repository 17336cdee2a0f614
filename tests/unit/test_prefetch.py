"""``include.plays.ingest_decode.prefetch``: the in-process ingest's reader thread, a few items ahead of its
consumer, ends with the consumer however the consumer stops."""

from __future__ import annotations

import threading

import pytest

from include.plays.ingest_decode import prefetch


def _readers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "ingest-prefetch" and t.is_alive()}


@pytest.fixture()
def alive():
    """The reader threads this test started that are still alive (a stuck one of another test aside)."""
    before = _readers()
    return lambda: _readers() - before


def _close_within(it, seconds: float = 10.0) -> bool:
    closer = threading.Thread(target=it.close, daemon=True)
    closer.start()
    closer.join(seconds)
    return not closer.is_alive()


def test_items_come_in_order_and_the_thread_ends(alive):
    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))
    assert not alive()


def test_a_consumer_that_stops_after_the_reader_has_finished_stops_it(alive):
    """The reader has handed over its last items and waits to say it is done on a full queue when the consumer
    stops (an error in the caller's loop, here ``close``): ``close`` returns, and the thread ends."""
    finished = threading.Event()

    def gen():
        yield from range(4)
        finished.set()

    it = prefetch(gen(), depth=2)
    assert [next(it), next(it)] == [0, 1]
    assert finished.wait(10)  # 2 and 3 in the queue, "done" waiting for room
    assert _close_within(it)
    assert not alive()


def test_a_consumer_that_stops_while_the_reader_waits_to_hand_over_stops_it(alive):
    it = prefetch(iter(range(1000)), depth=2)
    assert next(it) == 0
    assert _close_within(it)
    assert not alive()


def test_the_readers_error_reaches_the_consumer(alive):
    def gen():
        yield 1
        raise OSError("the Redis server went away")

    it = prefetch(gen())
    assert next(it) == 1
    with pytest.raises(OSError, match="went away"):
        next(it)
    assert not alive()
