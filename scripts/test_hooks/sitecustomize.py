"""Test-only hook: slows the online-time ``compute_shard`` down so a test can catch it running.

tests/integration/test_airflow_stack.py puts this folder on the PYTHONPATH of the stack it starts
and sets ``VIDEO_TEST_SHARD_DELAY_FILE``. While that file exists, every call of
``include.online_time_io.compute_shard`` first sleeps the number of seconds written in it (read
at each call, so the test switches the delay on and off while the stack runs). Without the
variable this module does nothing.
"""

from __future__ import annotations

import os
import sys

_FILE = os.environ.get("VIDEO_TEST_SHARD_DELAY_FILE")
_TARGET = "include.online_time_io"


def _delay_seconds() -> float:
    try:
        with open(_FILE) as f:
            return float(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0.0


def _patch(module) -> None:
    import functools
    import time

    original = module.compute_shard

    @functools.wraps(original)
    def compute_shard(*args, **kwargs):
        seconds = _delay_seconds()
        if seconds > 0:
            time.sleep(seconds)
        return original(*args, **kwargs)

    module.compute_shard = compute_shard


class _PatchOnImport:
    """A meta-path finder that lets the other finders load ``include.online_time_io``, then patches it."""

    def find_spec(self, name, path=None, target=None):
        if name != _TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is not None and hasattr(loader, "exec_module"):
            exec_module = loader.exec_module

            def patched_exec(module):
                exec_module(module)
                _patch(module)

            loader.exec_module = patched_exec
        return spec


if _FILE:
    sys.meta_path.insert(0, _PatchOnImport())
