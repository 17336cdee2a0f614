"""Task ``cleanup``: archived plays out of ``T_endlist_D``; ``vid_playid`` raised to the last id given.

The archived keys (``snapshot/endlist.parquet``, ``T_endlist_D`` as the ingest read it, in order) are
the head of ``T_endlist_D``: the collector only appends (RPUSH) and only cleanup removes. They are
taken off the head in chunks, each by one script that checks the chunk is exactly what the list starts
with, trims it (LTRIM) and records how far it got (``video_cleanup_<day>``), so the work is linear in
the list however often it is killed and resumed, Redis is never held for more than one chunk, and a
key pushed meanwhile (a late play, CONTRACT §4) is never removed.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from include.errors import CleanupRefused
from include.plays.lease import LeaseLost, ensure_held, held
from include.plays.store import chunks, read_frame
from include.storage import DataRoot
from video_analytics.conventions import PLAYID_HASH, as_date, endlist_key, lease_key, plays_path, report_path

CHUNK = 5000
PROGRESS_TTL = 30 * 86400


def progress_key(day: str) -> str:
    """``video_cleanup_<day>``: ``<ingest run id>:<archived keys removed so far>``."""
    return f"video_cleanup_{day}"


def require_passing_report(root: DataRoot, day: str, run_id: str) -> None:
    """Raise ``CleanupRefused`` unless ``reports/<day>.json`` passed for the ingest run ``run_id``."""
    rel = report_path(as_date(day))
    if not root.exists(rel):
        raise CleanupRefused(f"no verification report {root.uri(rel)}: run verify for {day} first")
    rep = root.read_json(rel)
    if not rep.get("ok"):
        raise CleanupRefused(f"verification of {day} failed ({', '.join(rep.get('failed', []))}); "
                             f"see {root.uri(rel)}")
    if rep.get("plays_run_id") != run_id:
        raise CleanupRefused(f"{root.uri(rel)} vouches for ingest run {rep.get('plays_run_id')}, not the "
                             f"current one {run_id}: run verify for {day} again")

_RAISE_LUA = """
local n = 0
for i = 1, #ARGV, 2 do
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if cur < tonumber(ARGV[i + 1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]); n = n + 1
  end
end
return n
"""

# KEYS: the list, the progress key, the day's lease; ARGV: the lease owner ('' = not held), the progress
# after this chunk, ttl, then the chunk. Trims the chunk off the head only if the head is exactly the
# chunk, and only while the lease is the caller's: {1, n} done, {-1, i} the head differs at i, {-2, 0} lost.
_REMOVE_HEAD = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[1] then return {-2, 0} end
local m = #ARGV - 3
local head = redis.call('LRANGE', KEYS[1], 0, m - 1)
for i = 1, m do
  if head[i] ~= ARGV[i + 3] then return {-1, i - 1} end
end
redis.call('LTRIM', KEYS[1], m, -1)
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
return {1, m}
"""


def _lease_owner(day: str) -> str:
    return next((lease.owner for lease in held() if lease.key == lease_key(day)), "")


def _align(redis, name: str, keys: pa.Array, start: int, step: int) -> tuple[int, int]:
    """Where in ``keys`` the list's head is (``len(keys)``: nowhere, nothing archived is left at the head):
    the first position, from ``start`` on and then before it, whose next ``step`` keys the list starts with.
    Returns ``(position, round trips)``."""
    first = redis.lindex(name, 0)
    if first is None:
        return len(keys), 1
    where = pc.indices_nonzero(pc.equal(keys, pa.scalar(first, pa.string()))).to_numpy()
    trips = 1
    for p in [int(p) for p in where if p >= start][:50] + [int(p) for p in where if p < start][:50]:
        want = keys[p: p + step].to_pylist()
        trips += 1
        if redis.lrange(name, 0, len(want) - 1) == want:
            return p, trips
    return len(keys), trips


def remove_archived(redis, day: str, keys: pa.Array, run_id: str, chunk: int = CHUNK) -> dict:
    """Take ``keys`` (the archived list, in order) off the head of ``T_endlist_<day>``, resuming where an
    earlier call for the same ``run_id`` stopped; linear in ``len(keys)``. ``LeaseLost`` when the day's
    lease (if held) is lost: no chunk is removed after that."""
    name, prog = endlist_key(day), progress_key(day)
    owner = _lease_owner(day)
    saved = redis.get(prog)
    run, _, at = (saved.decode() if isinstance(saved, bytes) else saved or "").partition(":")
    pos = int(at) if run == run_id and at.isdigit() else 0
    start = pos
    script = redis.register_script(_REMOVE_HEAD)
    removed, trips, aligned_at = 0, 1, None
    while pos < len(keys):
        part = keys[pos: pos + chunk].to_pylist()
        status, n = script(keys=[name, prog, lease_key(day)],
                           args=[owner, f"{run_id}:{pos + len(part)}", PROGRESS_TTL, *part])
        trips += 1
        if status == -2:
            raise LeaseLost(f"lost the lease {lease_key(day)} during cleanup of {day} after {pos} of "
                            f"{len(keys)} archived keys; nothing more was removed and it will be retried")
        if status == 1:
            pos += n
            removed += n
            continue
        if aligned_at == pos:  # not where the archive says even just after aligning (changed meanwhile)
            break
        pos, t = _align(redis, name, keys, pos, chunk)  # the head moved (an older cleanup, a lost record)
        trips += t
        aligned_at = pos
    return {"removed": removed, "resumed_at": start, "round_trips": trips}


def cleanup(root: DataRoot, redis, day: str) -> dict:
    """Remove the archived keys from ``T_endlist_D`` (``remove_archived``: later arrivals stay) and raise
    ``vid_playid`` to at least the last id given out. A repeated cleanup of the same ingest run removes
    nothing; one killed midway resumes where it stopped.

    Refuses (``CleanupRefused``) unless the day's verification report passed for the current ingest,
    whatever ran it: the DAG order is not trusted alone."""
    report = root.read_json(plays_path(day, "ingest.json"))
    require_passing_report(root, day, report["run_id"])
    done = root.read_json(plays_path(day, "cleanup.json")) if root.exists(plays_path(day, "cleanup.json")) else {}
    name = endlist_key(day)
    removal = {"removed": 0, "resumed_at": None, "round_trips": 0}
    if done.get("run_id") != report["run_id"]:
        keys = root.read_table(plays_path(day, "snapshot", "endlist.parquet"), columns=["key"]).column("key")
        removal = remove_archived(redis, day, keys.combine_chunks(), report["run_id"])
    round_trips = removal["round_trips"]
    raised = 0
    if root.exists(plays_path(day, "allocation.parquet")):
        alloc = read_frame(root, plays_path(day, "allocation.parquet"))
        last = alloc.groupby("vid")["playid"].max()
        script = redis.register_script(_RAISE_LUA)
        items = [(str(v), int(i)) for v, i in last.items()]
        ensure_held()
        for chunk in chunks(items, 2000):
            raised += int(script(keys=[PLAYID_HASH], args=[x for pair in chunk for x in pair]))
            round_trips += 1
    out = {"day": day, "run_id": report["run_id"], "removed": removal["removed"],
           "resumed_at": removal["resumed_at"], "playid_raised": raised,
           "redis_round_trips": round_trips, "remaining": redis.llen(name)}
    ensure_held()
    root.write_json(out, plays_path(day, "cleanup.json"))
    redis.delete(progress_key(day))
    return out
