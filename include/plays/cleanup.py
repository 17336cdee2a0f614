"""Task ``cleanup``: archived plays out of ``T_endlist_D``; ``vid_playid`` raised to the last id given."""

from __future__ import annotations

from include.errors import CleanupRefused
from include.plays.store import chunks, read_frame
from include.storage import DataRoot
from video_analytics.conventions import PLAYID_HASH, as_date, endlist_key, plays_path, report_path


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


def cleanup(root: DataRoot, redis, day: str) -> dict:
    """Remove the archived keys from ``T_endlist_D`` (one LREM ... 1 per archived occurrence, in list order,
    so each removal finds its key at the head; later arrivals stay) and raise ``vid_playid`` to at least
    the last id given out. A repeated cleanup of the same ingest run removes nothing.

    Refuses (``CleanupRefused``) unless the day's verification report passed for the current ingest,
    whatever ran it: the DAG order is not trusted alone."""
    report = root.read_json(plays_path(day, "ingest.json"))
    require_passing_report(root, day, report["run_id"])
    done = root.read_json(plays_path(day, "cleanup.json")) if root.exists(plays_path(day, "cleanup.json")) else {}
    removed = 0
    round_trips = 0
    name = endlist_key(day)
    if done.get("run_id") != report["run_id"]:
        keys = root.read_table(plays_path(day, "snapshot", "endlist.parquet")).column("key").to_pylist()
        for chunk in chunks(keys, 5000):
            p = redis.pipeline(transaction=False)
            for k in chunk:
                p.lrem(name, 1, k)
            removed += sum(p.execute())
            round_trips += 1
    raised = 0
    if root.exists(plays_path(day, "allocation.parquet")):
        alloc = read_frame(root, plays_path(day, "allocation.parquet"))
        last = alloc.groupby("vid")["playid"].max()
        script = redis.register_script(_RAISE_LUA)
        items = [(str(v), int(i)) for v, i in last.items()]
        for chunk in chunks(items, 2000):
            raised += int(script(keys=[PLAYID_HASH], args=[x for pair in chunk for x in pair]))
            round_trips += 1
    out = {"day": day, "run_id": report["run_id"], "removed": removed, "playid_raised": raised,
           "redis_round_trips": round_trips, "remaining": redis.llen(name)}
    root.write_json(out, plays_path(day, "cleanup.json"))
    return out
