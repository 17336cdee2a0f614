"""maintenance: the data root's retention policy, applied daily (``include.prune``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from include.alerts import failure_callbacks
from include.settings import retry_delay_seconds
from video_analytics import retention as ret

DOC = """
### Data-root maintenance (retention)
Removes from the data root what the retention policy lets go, once a day (the same as
`video-analytics prune`):

* `online_time/D/shards/` once `reports/D.json` passed (a re-run makes them again from the logs);
* `plays/D/snapshot/` (the raw Redis snapshot) after `snapshot_days` (default 90), once D's report passed
  and `cleanup` ran: **a day older than that can no longer be re-run from the data root**;
* `plays/D/quarantine.parquet` after `quarantine_days` (default 90), once D's report passed.

Results, reports, contributions, documents, the running totals and rejects are kept, and nothing that
`verify --all` reads goes. What went is recorded in `plays/D/pruned.json` / `online_time/D/pruned.json`.
A param left empty comes from the Variable `retention_<param>` (e.g. `retention_snapshot_days`), else the
default; a bad value fails the run at once. Param `dry_run` lists what would go (the task's XCom).

`capture_categories` copies the category names of the catalog (MySQL `vsort`: its `kid` and the column
named by the Variable `category_name_column`, default `name`) to `catalog/categories.json`, which the
dashboard shows instead of the ids; without such a column the dashboard shows the ids.
"""


def _days(default: int, low: int, what: str) -> Param:
    return Param(None, type=["null", "integer"], minimum=low, maximum=ret.MAX_DAYS,
                 description=f"{what} Empty: Variable retention_<name>, else {default}.")


@dag(
    dag_id="maintenance",
    schedule=CronDataIntervalTimetable("0 3 * * *", timezone="UTC"),
    start_date=datetime(2014, 1, 1),
    catchup=False,
    tags=["video", "maintenance", "daily"],
    doc_md=DOC,
    max_active_runs=1,
    default_args={
        "owner": "analytics",
        "retries": 2,
        "retry_delay": timedelta(seconds=retry_delay_seconds()),
        "on_failure_callback": failure_callbacks(),
        "execution_timeout": timedelta(hours=1),
    },
    params={
        "shard_days": _days(ret.SHARD_DAYS, 0, "Days a verified window's shards are kept."),
        "snapshot_days": _days(ret.SNAPSHOT_DAYS, 1, "Days a raw Redis snapshot is kept."),
        "quarantine_days": _days(ret.QUARANTINE_DAYS, 1, "Days quarantined plays are kept."),
        "dry_run": Param(False, type="boolean", description="List what would go; remove nothing."),
    },
)
def maintenance():
    from include import dashboard
    from include import prune as pr

    @task(multiple_outputs=False)
    def prune() -> dict:
        """Remove what the retention policy lets go from the data root (see the DAG's docs)."""
        return pr.maintenance(get_current_context())

    @task(multiple_outputs=False)
    def capture_categories() -> dict:
        """Copy the catalog's category names (MySQL `vsort`) to `catalog/categories.json` for the dashboard."""
        return dashboard.categories_task(get_current_context())

    prune()
    capture_categories()


maintenance()
