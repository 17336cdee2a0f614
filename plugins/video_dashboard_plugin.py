"""The video analytics dashboard in the Airflow UI: an external view in the nav (*Video dashboard*)
and a tab on every run of ``daily_analytics`` (*Day results*), served by a FastAPI app.

Pages are Jinja2 templates (``plugins/templates/video_dashboard/``) rendered with autoescaping; the
charts are SVG drawn on the server by ``video_analytics.charts`` from its own autoescaped templates,
with no JavaScript and no CDN, so the UI works with no internet. Every chart and table is bounded
whatever the data (charts: see ``video_analytics.charts``; tables: the top ``TOP`` videos, ``MAX_VIDS``
vids offered, ``MAX_ROWS`` checks, with a note of how many were left out). Every route requires what
Airflow's own API requires to read ``daily_analytics`` runs (``video_ui.app``), else 401/403. The
pages read the data root only (``include.dashboard``), imported per request: loading the plugin must
not import the pipeline, pandas or pyarrow.
"""

from __future__ import annotations

import datetime as dt

from airflow.plugins_manager import AirflowPlugin
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from video_ui import DAG_ID, TEMPLATES, app
from video_ui import data_root as _root

PREFIX = "/video-dashboard"
TOP = 10
MAX_VIDS = 100
MAX_ROWS = 200

router = APIRouter()


def _page(request: Request, template: str, title: str, status: int = 200, **context) -> HTMLResponse:
    """``video_dashboard/<template>`` rendered (autoescaped) with the nav's links and ``context``."""
    from video_analytics import dashboard as fmt

    base = request.scope.get("root_path", "").rstrip("/")
    page = TEMPLATES.get_template(f"video_dashboard/{template}").render(
        title=title, base=base, reports_href=f"{base.rsplit(PREFIX, 1)[0]}/video-reports/", dag_id=DAG_ID,
        f=fmt, **context)
    return HTMLResponse(page, status_code=status)


def _notice(request: Request, title: str, kind: str, status: int = 200, day: str = "", text: str = "") -> HTMLResponse:
    """A message page (``notice.html``); for a day without results, the empty state when no day has any."""
    from include import dashboard as dash

    root = _root()
    no_results = kind == "empty" or (kind in ("no_day", "run_no_day") and not dash.days(root))
    return _page(request, "notice.html", title, status, kind=kind, day=day, text=text, root_uri=root.uri(),
                 no_results=no_results)


def _day_or_none(text: str) -> str | None:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        return None


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, days: int = Query(30, ge=1, le=366)):
    from include import dashboard as dash
    from video_analytics import charts

    root = _root()
    hist = dash.history(root, days)
    if not hist:
        return _notice(request, "Video analytics", "empty")
    labels = [h["day"][5:] for h in hist]
    thr_r, thr_q = hist[-1]["reject_threshold"], hist[-1]["quarantine_threshold"]
    svgs = {
        "activity": charts.line_chart(labels, [
            ("active users (window)", [h["users"] for h in hist], lambda v: f"{v:,.0f}"),
            ("online time (hours)", [None if h["online_seconds"] is None else h["online_seconds"] / 3600
                                     for h in hist], lambda v: f"{v:,.0f} h"),
        ], "Active users and online time per day"),
        "rejects": charts.line_chart(labels, [("reject rate", [h["reject_rate"] for h in hist],
                                               lambda v: f"{100 * v:.2f}%")],
                                     "Reject rate per day", threshold=(f"threshold {100 * thr_r:.2f}%", thr_r)),
        "quarantine": charts.line_chart(labels, [("quarantine rate", [h["quarantine_rate"] for h in hist],
                                                  lambda v: f"{100 * v:.2f}%")],
                                        "Quarantine rate per day", threshold=(f"threshold {100 * thr_q:.2f}%", thr_q)),
    }
    return _page(request, "overview.html", "Video analytics", hist=hist, root_uri=root.uri(),
                 charts=svgs)


def _day_page(request: Request, title: str, day: str, vid: str | None) -> HTMLResponse:
    from include import dashboard as dash
    from video_analytics import charts
    from video_analytics.dashboard import histogram

    root = _root()
    secs = dash.online_seconds(root, day)
    minutes = secs / 60 if secs is not None else []
    top = dash.top_videos(root, day, MAX_VIDS) or {"count": None, "by_plays": [], "by_traffic": []}
    by_plays, by_traffic = top["by_plays"][:TOP], top["by_traffic"][:TOP]
    if vid is None and by_plays:
        vid = by_plays[0]["vid"]
    runs = dash.heat_map(root, day, vid) if vid else None
    svgs = {
        "histogram": charts.histogram(histogram(minutes, bins=20), f"Online time per user, window ending {day}",
                                      lambda v: f"{v:,.0f} min"),
        "by_plays": charts.bar_chart(by_plays, "ClickNum", "Top videos by plays", lambda v: f"{v:,.0f}"),
        "by_traffic": charts.bar_chart(by_traffic, "Traffic", "Top videos by traffic", lambda v: f"{v:,.0f}"),
        "heat": charts.heat_strip(runs or [], f"Heat map of {vid or '(no video)'} on {day}"),
    }
    rep = dash.report(root, day) or {}
    checks = [(f"{sec}.{c['name']}", c["ok"]) for sec, cs in rep.get("checks", {}).items() for c in cs]
    return _page(request, "day.html", title, day=day, vid=vid, s=dash.day_summary(root, day), root_uri=root.uri(),
                 videos=top["count"], top=by_plays, vids=[r["vid"] for r in top["by_plays"]], max_vids=MAX_VIDS,
                 checks=checks, max_rows=MAX_ROWS,
                 charts=svgs)


@router.get("/day/{day}", response_class=HTMLResponse)
def day_page(request: Request, day: str, vid: str | None = None):
    from include import dashboard as dash

    d = _day_or_none(day)
    if d is None:
        return _notice(request, "Video analytics", "not_a_day", 404, text=day)
    if d not in dash.days(_root()):
        return _notice(request, f"Day {d}", "no_day", 404, day=d)
    return _day_page(request, f"Day {d}", d, vid)


def _run_day(dag_id: str, run_id: str) -> str | None:
    """The day a run processed: its logical date, from the metadata DB (a run id's date is not
    always it: a backfill run of D is ``backfill__<D+1>...``); ``None`` for an unknown run."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        ld = session.scalar(select(DagRun.logical_date).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
    return None if ld is None else ld.date().isoformat()


@router.get("/run/{dag_id}/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, dag_id: str, run_id: str, vid: str | None = None):
    from include import dashboard as dash

    if dag_id != DAG_ID:
        return _notice(request, "Day results", "other_dag", text=dag_id)
    d = _run_day(dag_id, run_id)
    if d is None:
        return _notice(request, "Day results", "no_run", 404, text=run_id)
    if d not in dash.days(_root()):
        return _notice(request, "Day results", "run_no_day", day=d, text=run_id)
    return _day_page(request, f"Day {d} (run {run_id})", d, vid)


class VideoDashboardPlugin(AirflowPlugin):
    name = "video_dashboard"
    fastapi_apps = [{"app": app("Video analytics dashboard", router), "url_prefix": PREFIX, "name": "Video dashboard"}]
    external_views = [
        {"name": "Video dashboard", "href": f"{PREFIX}/", "destination": "nav", "url_route": "video_dashboard"},
        {"name": "Day results", "href": f"{PREFIX}/run/{{DAG_ID}}/{{RUN_ID}}", "destination": "dag_run",
         "url_route": "video_day_results"},
    ]
