"""Make mongomock 4.3 accept pymongo >= 4.13 bulk operations.

pymongo's ``UpdateOne`` / ``ReplaceOne`` pass ``sort=...`` to the bulk builder, which mongomock's
``BulkOperationBuilder`` does not know. ``install()`` wraps ``add_update`` / ``add_replace`` to drop
it (refusing a real sort, which mongomock could not honour). Idempotent.
"""

from __future__ import annotations

import functools

import mongomock.collection as _mc


def _drop_sort(fn):
    if getattr(fn, "_sort_shim", False):
        return fn

    @functools.wraps(fn)
    def wrapper(self, *args, sort=None, **kwargs):
        if sort:
            raise NotImplementedError("mongomock cannot apply a sort to a bulk update")
        return fn(self, *args, **kwargs)

    wrapper._sort_shim = True
    return wrapper


def install() -> None:
    builder = _mc.BulkOperationBuilder
    builder.add_update = _drop_sort(builder.add_update)
    builder.add_replace = _drop_sort(builder.add_replace)


install()
