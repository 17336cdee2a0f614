"""daily_analytics: users' online time and play statistics for one day (see README)."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import (
    CronDataIntervalTimetable,
    Param,
    PokeReturnValue,
    TaskGroup,
    dag,
    get_current_context,
    task,
)

from include.alerts import deadline_alert, failure_callbacks
from include.assets import DAILY_VERIFIED, ONLINE_TIME, PLAY_DOCUMENTS, PLAY_DOCUMENTS_MONGODB
from include.settings import (
    PUBLISH_POOL,
    retry_delay_seconds,
    schedule_end_date,
    sensor_poke_seconds,
    sensor_timeout_seconds,
    task_timeout_minutes,
)
from video_analytics import conventions as conv

SENSOR_TIMEOUT = sensor_timeout_seconds()
SENSOR_POKE = sensor_poke_seconds()

DOC = """
### Daily video analytics
The run with logical date **D** covers [D, D+1) and processes day **D**, and only that day:
to process a day again, clear its run or backfill it.

1. **Sensors** wait (reschedule mode, no worker slot held) until every window day's log is
   complete (its `.done` marker or the next day's file) or accepted as lost, and for the
   collector's Redis list `T_endlist_D`.
2. **online_time**: each log is parsed once into its day summary (kept in the data root, reused
   while the file is unchanged); the window's users are split into user-aligned shards (param
   `shards`; by default one per 256 MiB of logs, at most `[core] parallelism`), each shard's
   online time is combined from its users' day summaries (mapped tasks), merged and published
   (docs/SPEC.md §1). A window whose file holds a time outside its day runs from the logs instead
   (Arrow IPC shards of events). `windows` then writes the 1-, 7- and 30-day windows from the same
   summaries.
3. **plays**: snapshot D's plays from Redis, quarantine bad ones, roll up videos, users and
   categories, publish the legacy-compatible MongoDB documents (docs/SPEC.md §2–§5).
4. **verify** checks the results against their inputs and writes `reports/D.json` to the data
   root; **cleanup** then removes the archived plays from `T_endlist_D`.

Results, rejects, quarantine, reports and alerts live under the `data_root` Variable.
Assets: `merge_report` updates `video_online_time`, `rollup_videos` `video_play_documents`, `publish`
`video_play_documents_mongodb` and a passing `verify` `video_daily_verified`, each event with the day's
counts and totals (`weekly_video_summary` is scheduled on them). Charts: *Video dashboard* in the nav,
*Day results* on a run.
"""


@dag(
    dag_id="daily_analytics",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2014, 1, 1),
    end_date=schedule_end_date(),  # unset in production; the demo stack's last day (Makefile)
    catchup=False,
    tags=["video", "analytics", "daily"],
    doc_md=DOC,
    default_args={
        "owner": "analytics",
        "retries": 2,
        "retry_delay": timedelta(seconds=retry_delay_seconds()),
        "on_failure_callback": failure_callbacks(),
        "execution_timeout": timedelta(minutes=task_timeout_minutes()),
    },
    deadline=deadline_alert(),
    params={
        "window_days": Param(conv.WINDOW_DAYS, type="integer", minimum=1, maximum=31, description="Days in the online-time window."),
        "windows": Param([1, 7, 30], type="array", items={"type": "integer", "minimum": 1, "maximum": 31},
                         description="Online-time windows (days) computed side by side from per-day summaries, "
                                     "each in online_time/D/w<W>/."),
        "lookback_days": Param(conv.LOOKBACK_DAYS, type="integer", minimum=0, maximum=7,
                               description="Days read before the window, for sessions open at midnight."),
        "shards": Param(None, type=["null", "integer"], minimum=1, maximum=64,
                        description="User-aligned shards (mapped tasks). Empty: one per 256 MiB of the window's "
                                    "logs, at most [core] parallelism."),
        "min_gap": Param(conv.MIN_GAP, type="integer", minimum=0, description="Gaps shorter than this (s) add no time."),
        "timeout": Param(conv.TIMEOUT, type="integer", minimum=1, description="A longer gap (s) ends the session."),
        "post_multiplier": Param(conv.POST_MULTIPLIER, type="integer", minimum=1, description="A session with a post counts this many times."),
        "max_reject_rate": Param(conv.MAX_REJECT_RATE, type="number", minimum=0, maximum=1,
                                 description="Fail when rejected log rows pass this share."),
        "max_quarantine_rate": Param(conv.MAX_QUARANTINE_RATE, type="number", minimum=0, maximum=1,
                                     description="Fail when quarantined plays pass this share."),
    },
)
def daily_analytics():
    from include import tasks

    @task.sensor(mode="reschedule", poke_interval=SENSOR_POKE, timeout=SENSOR_TIMEOUT)
    def wait_for_logs() -> PokeReturnValue:
        """Wait until each window day's log is complete (`.done` or next day's file) or accepted missing."""
        return PokeReturnValue(is_done=tasks.wait_for_logs(get_current_context()))

    @task.sensor(mode="reschedule", poke_interval=SENSOR_POKE, timeout=SENSOR_TIMEOUT)
    def wait_for_plays() -> PokeReturnValue:
        """Wait for the collector's `T_endlist_D` key in Redis (or D's earlier snapshot, on a re-run)."""
        return PokeReturnValue(is_done=tasks.wait_for_plays(get_current_context()))

    # Tasks returning a dict say multiple_outputs=False: the dict is one XCom (`return_value`), not also
    # one XCom per key, which TaskFlow infers from `-> dict` (one API call and row per key; nothing reads them).
    with TaskGroup("online_time", tooltip="Users' online time over the window (CONTRACT §1)") as online_group:

        @task
        def sort_and_partition() -> list[dict]:
            """Have the window's day summaries (parsing only new or changed logs), plan user-aligned shards.

            Returns the shard descriptors (mode, index, summary paths; or an Arrow IPC shard of events when
            the summaries cannot do the window); the full partition manifest stays in the data root.
            """
            return tasks.sort_and_partition(get_current_context())

        # a mapped task takes no docstring as its doc: doc_md says it (once)
        @task(map_index_template="{{ shard_label }}", multiple_outputs=False,
              doc_md="Compute every user's online time in one shard: its users' day summaries combined "
                     "(or its events through the streamed rules); one mapped task per shard.")
        def compute_shard(shard: dict) -> dict:
            return tasks.compute_shard(get_current_context(), shard)

        @task(outlets=[ONLINE_TIME], multiple_outputs=False)
        def merge_report(results: list[dict]) -> dict:
            """Merge the shard results into the window's dataset; publish to MongoDB when configured."""
            return tasks.merge_report(get_current_context(), results)

        @task(multiple_outputs=False)
        def windows(report: dict) -> dict:
            """Each window of the `windows` param from per-day summaries (each log parsed once), in online_time/D/w<W>/."""
            return tasks.online_windows(get_current_context())

        online_report = merge_report(compute_shard.expand(shard=sort_and_partition()))
        online_windows = windows(online_report)

    with TaskGroup("plays", tooltip="Play statistics from Redis to MongoDB (CONTRACT §2-§5)") as plays_group:

        @task(multiple_outputs=False)
        def ingest_plays() -> dict:
            """Snapshot D's plays from Redis, quarantine bad ones, resolve categories, allocate play ids."""
            return tasks.ingest_plays(get_current_context())

        @task(outlets=[PLAY_DOCUMENTS], multiple_outputs=False)
        def rollup_videos(ingested: dict) -> dict:
            """Roll D's plays up into per-video, per-user and per-category contributions and documents."""
            return tasks.rollup_videos(get_current_context(), ingested)

        @task(pool=PUBLISH_POOL, outlets=[PLAY_DOCUMENTS_MONGODB], multiple_outputs=False)
        def publish(rolled: dict) -> dict:
            """Bulk-upsert the day's documents into MongoDB; skips only when `video_mongo` is not defined."""
            return tasks.publish(get_current_context(), rolled)

        published = publish(rollup_videos(ingest_plays()))

    @task(trigger_rule="none_failed", outlets=[DAILY_VERIFIED], multiple_outputs=False)
    def verify() -> dict:
        """Check the day's results against their inputs; write `reports/D.json`; fail on any failed check."""
        return tasks.verify(get_current_context())

    @task(multiple_outputs=False)
    def cleanup(verified: dict) -> dict:
        """After a passing verify: remove the archived plays from `T_endlist_D`, mirror play-id counters."""
        return tasks.cleanup(get_current_context(), verified)

    verified = verify()
    wait_for_logs() >> online_group
    wait_for_plays() >> plays_group
    [online_report, online_windows, published] >> verified
    cleanup(verified)


daily_analytics()
