"""Play ids (CONTRACT §2): continue per vid from ``vid_playid``, else the stat document's ``PlayID``,
else the data root's own highest id (or the legacy baseline's ``PlayID``), else 0; reserved atomically
so concurrent days never share one."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pandas as pd

from include.plays.baseline import baseline_play_ids
from include.plays.lease import ensure_held
from include.plays.store import chunks, read_frame, stored_days
from include.storage import DataRoot
from video_analytics.conventions import PLAYID_HASH, plays_path, reservation_key

RESERVATION_TTL = 30 * 86400

# KEYS[1] vid_playid, KEYS[2] the day's pending reservations; ARGV[1] ttl, then (vid, count, seed|'')
# triples. A vid reserved before with at least ``count`` ids gets the same block again (a run after a
# crash); otherwise a new block is reserved and recorded, atomically with the increment.
_RESERVE = """
local out = {}
for i = 2, #ARGV, 3 do
  local vid, count = ARGV[i], tonumber(ARGV[i + 1])
  local prev = redis.call('HGET', KEYS[2], vid)
  local before = nil
  if prev then
    local sep = string.find(prev, ':', 1, true)
    if tonumber(string.sub(prev, sep + 1)) >= count then before = tonumber(string.sub(prev, 1, sep - 1)) end
  end
  if not before then
    if ARGV[i + 2] ~= '' then redis.call('HSETNX', KEYS[1], vid, ARGV[i + 2]) end
    before = redis.call('HINCRBY', KEYS[1], vid, count) - count
    redis.call('HSET', KEYS[2], vid, before .. ':' .. count)
  end
  out[#out + 1] = before
end
redis.call('EXPIRE', KEYS[2], ARGV[1])
return out
"""


def root_last_ids(root: DataRoot, vids=None) -> dict[str, int]:
    """The highest play id the data root has given each vid (all days); for ``vids``, the legacy baseline's
    ``PlayID`` when higher."""
    frames = [read_frame(root, plays_path(day, "allocation.parquet"), columns=["vid", "playid"])
              for day in stored_days(root, "allocation.parquet")]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"vid": [], "playid": []})
    out = {k: int(v) for k, v in df.groupby("vid")["playid"].max().items()}
    for vid, pid in baseline_play_ids(root, vids).items():
        out[vid] = max(out.get(vid, 0), int(pid))
    return out


def reserve_ids(redis, root: DataRoot, counts: dict[str, int], day: str, mongo_db=None, batch: int = 5000
                ) -> tuple[dict[str, int], dict]:
    """Atomically reserve ``counts[vid]`` ids per vid; returns the id *before* each vid's first new play.

    Continues from ``vid_playid[vid]``; when absent, from the stat document's ``PlayID`` (``mongo_db``) or
    else the data root's own highest id for the vid, else 0 (HSETNX seeds it, HINCRBY reserves, so two days
    processed at once never share an id). The reservation is recorded under ``vid_playid_pending_<day>``
    in the same atomic step, so a run of that day after a crash (before ``release_reservation``) gets the
    same ids back instead of burning new ones.
    """
    stats = {"round_trips": 0, "playid_from_redis": 0, "playid_from_stat": 0, "playid_from_root": 0,
             "playid_from_zero": 0}
    vids = list(counts)
    current: dict[str, Any] = {}
    for chunk in chunks(vids, batch):
        current.update(zip(chunk, redis.hmget(PLAYID_HASH, chunk), strict=True))
        stats["round_trips"] += 1
    missing = [v for v in vids if current[v] is None]
    stats["playid_from_redis"] = len(vids) - len(missing)
    seed: dict[str, int] = {}
    if missing:
        if mongo_db is not None:
            by_uid: dict[str, list[str]] = defaultdict(list)
            for v in missing:
                by_uid[v[:4]].append(v)
            for uid, vs in by_uid.items():
                for doc in mongo_db[f"{uid}_stat"].find({"_id": {"$in": vs}}, {"PlayID": 1}):
                    if doc.get("PlayID") is not None:
                        seed[doc["_id"]] = int(doc["PlayID"])
            stats["playid_from_stat"] = len(seed)
        rest = [v for v in missing if v not in seed]
        if rest:
            own = root_last_ids(root, rest)
            for v in rest:
                if v in own:
                    seed[v] = own[v]
                    stats["playid_from_root"] += 1
                else:
                    seed[v] = 0
                    stats["playid_from_zero"] += 1
    before: dict[str, int] = {}
    script = redis.register_script(_RESERVE)
    ensure_held()  # a run that lost its lease reserves no ids
    for chunk in chunks(vids, batch):
        args: list = [RESERVATION_TTL]
        for v in chunk:
            args += [v, counts[v], seed.get(v, "")]
        res = script(keys=[PLAYID_HASH, reservation_key(day)], args=args)
        stats["round_trips"] += 1
        before.update((v, int(b)) for v, b in zip(chunk, res, strict=True))
    return before, stats


def release_reservation(redis, day: str) -> None:
    """The day's ids are recorded in the data root now: forget the pending reservation."""
    redis.delete(reservation_key(day))
