"""weekly_video_summary: an example of downstream work scheduled on daily_analytics' Assets."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, get_current_context, task

from include.alerts import failure_callbacks
from include.assets import DAILY_VERIFIED, ONLINE_TIME, PLAY_DOCUMENTS

DOC = """
### Weekly video summary (an Asset-scheduled example)
Runs each time `daily_analytics` verifies a day: its `verify` task updates the Asset
`video_daily_verified` (only when every check passed), and this DAG is scheduled on that Asset. It
summarises the 7 days ending the verified day (plays, the latest window's users and online time, days
verified, worst reject and quarantine rates) into `summaries/weekly/<day>.json` in the data root.
The day comes from the triggering asset event's metadata (`extra["day"]`).

The pattern for your own downstream DAGs: `schedule=[Asset("video_online_time")]` (online time, from
`merge_report`), `video_play_documents` (`rollup_videos`), `video_play_documents_mongodb` (`publish`)
or `video_daily_verified` (`verify`); see *Assets* in the UI for their events and lineage.
"""


@dag(
    dag_id="weekly_video_summary",
    schedule=[DAILY_VERIFIED],
    start_date=datetime(2014, 1, 1),
    catchup=False,
    tags=["video", "analytics", "assets", "example"],
    doc_md=DOC,
    default_args={
        "owner": "analytics",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "on_failure_callback": failure_callbacks(),
        "execution_timeout": timedelta(minutes=10),
    },
)
def weekly_video_summary():
    from include import tasks

    @task(inlets=[ONLINE_TIME, PLAY_DOCUMENTS, DAILY_VERIFIED], multiple_outputs=False)  # one XCom, not one per key
    def summarise_week() -> dict:
        """Summarise the 7 days ending the verified day into `summaries/weekly/<day>.json`."""
        return tasks.weekly_summary(get_current_context())

    summarise_week()


weekly_video_summary()
