"""Watching the Lua scripts a function runs on a real Redis: ``register_script`` of the real client,
wrapped so a test can count the calls and act before one (expire a lease, die as a killed process)."""

from __future__ import annotations


class Scripts:
    """Within the block, ``r.register_script`` gives scripts that run on the real server, calling
    ``before(n)`` first and ``after(n)`` when done, ``n`` counting every script call from 1."""

    def __init__(self, r, before=lambda n: None, after=lambda n: None):
        self.r, self.real, self.before, self.after, self.calls = r, r.register_script, before, after, 0

    def __enter__(self):
        outer = self

        class Script:
            def __init__(self, body):
                self.script = outer.real(body)

            def __call__(self, **kw):
                outer.calls += 1
                outer.before(outer.calls)
                try:
                    return self.script(**kw)
                finally:
                    outer.after(outer.calls)

        self.r.register_script = Script
        return self

    def __exit__(self, *exc):
        del self.r.register_script
