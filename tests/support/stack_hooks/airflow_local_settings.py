"""Test-only Airflow local settings for the Celery stack test (tests/integration/test_airflow_stack.py).

That test alone puts this folder on ``PYTHONPATH``; Airflow imports ``airflow_local_settings`` in every
one of its processes (``airflow.settings.initialize``), before any task runs. With
``VIDEO_TEST_SHARD_DELAY_FILE`` set, ``include.tasks.compute_shard`` first sleeps the seconds written in
that file (read at each call), so the test can catch a shard running and kill its worker. Nothing of
this is in the production modules.
"""

from __future__ import annotations

import functools
import os
import time

__all__: list[str] = []  # no cluster policy, nothing copied into airflow.settings


def _delay_seconds(path: str) -> float:
    try:
        with open(path) as fh:
            return float(fh.read().strip() or 0)
    except (OSError, ValueError):
        return 0.0


def _install_shard_delay() -> None:
    path = os.environ.get("VIDEO_TEST_SHARD_DELAY_FILE")
    if not path:
        return
    from include import tasks

    compute_shard = tasks.compute_shard

    @functools.wraps(compute_shard)
    def delayed(*args, **kwargs):
        seconds = _delay_seconds(path)
        if seconds > 0:
            time.sleep(seconds)
        return compute_shard(*args, **kwargs)

    delayed.video_test_shard_delay = path
    tasks.compute_shard = delayed


_install_shard_delay()
