"""The legacy job's baseline on the data root (CONTRACT §7): the running totals as the legacy job left them,
the fold's initial state, and the last day it processed.

Stored in the snapshots' format as ``totals/baseline/<name>/<kind>.parquet`` and named by
``totals/registry.json`` under ``"baseline"``: ``{"dir", "last_day", "fingerprint", "source", "rows"}``
(``{"new_site": true, "dir": null, "last_day": null}`` for a site that never ran the legacy job). The
registry is written in one atomic step, so a baseline and the snapshots folded onto it change together
and a failed import leaves the totals as they were.
"""

from __future__ import annotations

import hashlib
import uuid

import pandas as pd
import pyarrow as pa

from include.plays.lease import ensure_held, totals_lease
from include.plays.store import iter_batches, read_frame
from include.storage import DataRoot
from video_analytics import totals as tot
from video_analytics.conventions import totals_path

NEW_SITE = {"new_site": True, "dir": None, "last_day": None, "fingerprint": "new-site"}


class CountedDay(ValueError):
    """Plays of a day the legacy job already counted."""


class NoBaseline(RuntimeError):
    """A MongoDB that holds the legacy job's totals, and a data root without a baseline."""


class BaselineExists(ValueError):
    """A different baseline is already installed (``--replace`` replaces it)."""


def schema(kind: str) -> pa.Schema:
    """The Arrow schema of a state kind, as the snapshots store it."""
    df = tot.empty_state()[kind]
    return pa.schema([(c, pa.float64() if df[c].dtype == "float64" else pa.int64() if df[c].dtype == "int64"
                       else pa.string()) for c in df.columns])


def row_hashes(table: pa.Table) -> bytes:
    """64-bit hashes of a table's rows, as bytes (the fingerprint's input; independent of chunking)."""
    return pd.util.hash_pandas_object(table.to_pandas(), index=False).to_numpy().tobytes()


def combine(hashes: dict[str, hashlib._Hash]) -> str:
    """One fingerprint of per-kind running hashes."""
    h = hashlib.sha256()
    for k in tot.STATE_KINDS:
        h.update(f"{k}:{hashes[k].hexdigest()};".encode())
    return h.hexdigest()


def baseline_of(reg: dict) -> dict | None:
    return reg.get("baseline")


def baseline_day(reg: dict) -> str | None:
    """The legacy job's last day (``None``: no baseline, or a new site)."""
    b = reg.get("baseline")
    return b.get("last_day") if b else None


def _rel(name: str, kind: str) -> str:
    return totals_path("baseline", name, f"{kind}.parquet")


def baseline_rel(reg: dict, kind: str) -> str | None:
    """The baseline's file of ``kind`` (``None``: no baseline, or a new site)."""
    b = reg.get("baseline")
    return _rel(b["dir"], kind) if b and b.get("dir") else None


def baseline_state(root: DataRoot, reg: dict, kinds=tot.STATE_KINDS) -> dict[str, pd.DataFrame]:
    """The fold's initial state (of ``kinds``): the baseline's, or the empty state."""
    b = reg.get("baseline")
    if not b or not b.get("dir"):
        return {k: v for k, v in tot.empty_state().items() if k in kinds}
    return {k: read_frame(root, _rel(b["dir"], k)) for k in kinds}


def fingerprint(root: DataRoot, name: str) -> str:
    """The fingerprint of a stored baseline, recomputed from its files (streamed)."""
    hashes = {}
    for k in tot.STATE_KINDS:
        hashes[k] = hashlib.sha256()
        for batch in iter_batches(root, _rel(name, k), 1 << 20):
            hashes[k].update(row_hashes(pa.Table.from_batches([batch])))
    return combine(hashes)


def baseline_play_ids(root: DataRoot, vids) -> dict[str, int]:
    """The baseline's ``PlayID`` of ``vids`` (those it has)."""
    from include.plays.totals import read_registry

    b = read_registry(root).get("baseline")
    if not b or not b.get("dir") or not vids:
        return {}
    t = root.read_table(_rel(b["dir"], "vid"), columns=["vid", "PlayID"], filters=[("vid", "in", list(vids))])
    return dict(zip(t.column("vid").to_pylist(), t.column("PlayID").to_pylist(), strict=True))


def refuse_counted_day(root: DataRoot, day: str) -> None:
    """Refuse plays of a day up to the legacy job's last day: that day is already counted."""
    from include.plays.totals import read_registry

    last = baseline_day(read_registry(root))
    if last is not None and day <= last:
        raise CountedDay(f"plays of {day} refused: that day is already counted by the legacy job, whose last day "
                         f"is {last} (the baseline of {root.uri()}; CONTRACT §7)")


def require_baseline(root: DataRoot, mongo_db) -> None:
    """Before a publish: a MongoDB that holds ``<uid>_stat`` documents this data root did not publish, while
    the data root has no baseline, would have its all-time totals replaced. Refuse (before writing
    anything), pointing to ``legacy-import``."""
    from include.mongo import PUBLISH_MARKER
    from include.plays.totals import read_registry

    if baseline_of(read_registry(root)) is not None:
        return
    for name in sorted(mongo_db.list_collection_names()):
        if name.endswith("_stat") and mongo_db[name].find_one({}, {"_id": 1}) is not None:
            break
    else:
        return
    token = (mongo_db[PUBLISH_MARKER].find_one({"_id": "target"}) or {}).get("token")
    if isinstance(token, str) and token.isalnum() and root.exists(totals_path("published", f"{token}.parquet")):
        return  # the stat documents are this data root's own
    raise NoBaseline(
        f"MongoDB database {mongo_db.name!r} already holds {name} documents, and the data root {root.uri()} "
        f"has no baseline: import the legacy job's totals first with `video-analytics legacy-import --dump DIR "
        f"| --mongo --data-root ROOT` (or `legacy-import --new-site` for a site that never ran it; "
        f"docs/CUTOVER.md). Nothing was published")


def install(root: DataRoot, staged: dict[str, str] | None, meta: dict, replace: bool, redis=None) -> dict:
    """Make ``meta`` (``last_day``, ``fingerprint``, ``source``, ``rows``) with the staged local Parquet
    files (``{kind: path}``; ``None`` for a new site) the baseline, under the totals lease. The same
    baseline again changes nothing; a different one needs ``replace``. Days already folded are re-folded
    onto it (and must all be later than its last day)."""
    from include.plays import totals

    with totals_lease(redis, "legacy-import"):
        reg = totals.read_registry(root)
        old = baseline_of(reg)
        same = old is not None and (old.get("fingerprint"), old.get("last_day")) == (meta["fingerprint"],
                                                                                     meta["last_day"])
        if same:
            return {"status": "unchanged", **{k: old.get(k) for k in ("dir", "last_day", "fingerprint")}}
        if old is not None and not replace:
            what = "a new site (no legacy totals)" if old.get("new_site") else f"last day {old.get('last_day')}"
            raise BaselineExists(f"the data root {root.uri()} already has a different baseline ({what}, "
                                 f"{old.get('source')}): pass --replace to replace it")
        last = meta["last_day"]
        counted = sorted(d for d in reg["days"] if last is not None and d <= last)
        if counted:
            raise CountedDay(f"the data root already processed {', '.join(counted[:5])}, which the baseline's "
                             f"legacy job counted (its last day is {last}): refusing the baseline")
        name = None
        if staged is not None:
            name = f"{last}-{uuid.uuid4().hex[:8]}"
            for kind, local in staged.items():
                root.fs.makedirs(root.path(totals_path("baseline", name)), exist_ok=True)
                root.fs.put(local, root.path(_rel(name, kind)))
        new = {**reg, "baseline": {**meta, "dir": name} if staged is not None else {**NEW_SITE, **meta}}
        if reg["days"]:
            new["snapshots"] = _refold(root, new, totals)
        ensure_held()
        root.write_json(new, totals.REGISTRY)
        _remove_unused(root, new)
    return {"status": "replaced" if old is not None else "imported", "dir": name, "last_day": last,
            "fingerprint": meta["fingerprint"], "days_refolded": sorted(reg["days"])}


def _refold(root: DataRoot, reg: dict, totals) -> dict[str, str]:
    """Every registered day folded again onto the (new) baseline; the kept states, written anew."""
    ordered = sorted(reg["days"])
    keep = tot.kept_snapshots(ordered)
    return totals.fold_and_write(root, reg, None, ordered, keep)


def _remove_unused(root: DataRoot, reg: dict) -> None:
    live = {"baseline": {(reg.get("baseline") or {}).get("dir")}, "snapshots": set(reg["snapshots"].values())}
    for where, names in live.items():
        for p in root.glob(totals_path(where, "*")):
            name = p.rstrip("/").split("/")[-1]
            if name not in names:
                root.remove(totals_path(where, name))
