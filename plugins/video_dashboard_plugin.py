"""The video analytics dashboard in the Airflow UI: an external view in the nav (*Video dashboard*)
and a tab on every run of ``daily_analytics`` (*Day results*), served by a FastAPI app.

Pages are Jinja2 templates (``plugins/templates/video_dashboard/``) rendered with autoescaping; the
charts are SVG drawn on the server by ``video_analytics.charts`` from its own autoescaped templates,
with no JavaScript and no CDN, so the UI works with no internet. Every chart and table is bounded
whatever the data (charts: see ``video_analytics.charts``; tables: the top ``TOP`` videos, ``MAX_VIDS``
vids offered, ``MAX_ROWS`` checks, with a note of how many were left out). Every route requires what
Airflow's own API requires to read ``daily_analytics`` runs (``video_ui.app``), else 401/403. The
pages read the data root (``include.dashboard``), imported per request: loading the plugin must
not import the pipeline, pandas or pyarrow; and the metadata DB for each day's run and its failed
tasks (``video_ui.runs``), linked relative to the UI's base path.

The overview's axis is the calendar (a day without results is a gap) and it says the last complete
day (verify passed) and the hours since it ended. It draws DAU, WAU and MAU (the 1-, 7- and 30-day
windows, ``online_time/D/w<W>/``) on one scale and online time per active user; days with late plays
(a re-run picks them up: the run's link) and days accepted as missing are marked, on the day page too.
Every table has a CSV download (``/days.csv``, ``/active-users.csv``, ``/day/<D>/<table>.csv``), its
text cells made inert for spreadsheets (``dashboard.csv_cell``).
"""

from __future__ import annotations

import datetime as dt

import video_ui
from airflow.plugins_manager import AirflowPlugin
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
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
    """A message page (``notice.html``); for a day without results, the empty state when no day has any,
    and its log's acceptance as missing when there is one."""
    from include import dashboard as dash

    root = _root()
    no_results = kind == "empty" or (kind in ("no_day", "run_no_day") and not dash.days(root))
    lost = dash.accepted_missing(root, [day]).get(day) if day else None
    return _page(request, "notice.html", title, status, kind=kind, day=day, text=text, root_uri=root.uri(),
                 no_results=no_results, lost=lost)


def _day_or_none(text: str) -> str | None:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        return None


def _ui(request: Request) -> str:
    """The Airflow UI's base path (the plugin is mounted at ``<ui>/video-dashboard``): links stay relative."""
    return request.scope.get("root_path", "").rstrip("/").rsplit(PREFIX, 1)[0]


def _links(request: Request, days: list[str]) -> tuple[dict[str, dict], str]:
    """Per day: its run's page and its failed tasks' logs in the Airflow UI (``video_ui.runs``), and an
    error text when the metadata DB could not be read (the page still shows, without links)."""
    from urllib.parse import quote

    try:
        runs = video_ui.runs(days)
    except Exception as exc:  # the metadata DB is down or locked: say so, show the data anyway
        return {}, f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
    ui = _ui(request)
    out = {}
    for day, r in runs.items():
        run = f"{ui}/dags/{DAG_ID}/runs/{quote(r['run_id'], safe='')}"
        failed = [{"task": t + (f"[{m}]" if m >= 0 else ""),
                   "href": f"{run}/tasks/{quote(t, safe='')}{f'/mapped/{m}' if m >= 0 else ''}"
                           f"{f'?try_number={n}' if n > 0 else ''}"} for t, m, n in r["failed"]]
        out[day] = {"run_id": r["run_id"], "state": r["state"], "href": run, "failed": failed,
                    "more_failed": r["more_failed"]}
    return out, ""


def _window_charts(hist: list[dict]) -> dict:
    """DAU, WAU and MAU on one scale, and online time per active user of each window, over the calendar
    (real dates; a day without a window's results is a gap in its line)."""
    from video_analytics import charts
    from video_analytics.dashboard import WINDOW_NAMES

    days = [h["day"] for h in hist]

    def series(key: str, scale: float, fmt) -> list:
        def value(v):
            return v if v is None or scale == 1 else v / scale

        return [(f"{name} ({w}-day window)", [value(h["windows"][w][key]) for h in hist], fmt)
                for w, name in WINDOW_NAMES.items()]

    return {"active_users": charts.line_chart(days, series("users", 1, lambda v: f"{v:,.0f}"),
                                              "Daily, weekly and monthly active users", shared=True),
            "per_user": charts.line_chart(days, series("per_user", 60, lambda v: f"{v:,.1f} min"),
                                          "Online time per active user", shared=True)}


def _overview_charts(hist: list[dict]) -> dict:
    from video_analytics import charts

    labels = [h["day"][5:] for h in hist]
    known = [h for h in hist if not h["missing"]] or hist
    thr_r, thr_q = known[-1]["reject_threshold"], known[-1]["quarantine_threshold"]
    return {
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
        **_window_charts(hist),
    }


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, days: int = Query(30, ge=1, le=366)):
    from include import dashboard as dash

    root = _root()
    now = dt.datetime.now(dt.UTC)
    hist = dash.timeline(root, days, now.date())
    if not hist:
        return _notice(request, "Video analytics", "empty")
    links, links_error = _links(request, [h["day"] for h in hist])
    return _page(request, "overview.html", "Video analytics", hist=hist, root_uri=root.uri(), days=days,
                 charts=_overview_charts(hist), last=dash.last_complete(root, now), links=links,
                 links_error=links_error)


def _names(root) -> dict[str, str]:
    from include import dashboard as dash

    return dash.category_names(root)


def _day_page(request: Request, title: str, day: str, vid: str | None) -> HTMLResponse:
    from include import dashboard as dash
    from video_analytics import charts

    root = _root()
    names = _names(root)
    top = dash.top_videos(root, day, MAX_VIDS) or {"count": None, "by_plays": [], "by_traffic": []}
    by_plays, by_traffic = top["by_plays"][:TOP], top["by_traffic"][:TOP]
    if vid is None and by_plays:
        vid = by_plays[0]["vid"]
    heat = (dash.heat_view(root, day, vid, charts.HEAT_WIDTH) if vid else None) or {"runs": [], "count": 0, "step": None}
    curve = dash.retention_curve(root, day, vid) if vid else []
    svgs = {
        "histogram": charts.histogram(dash.online_histogram(root, day) or [], f"Online time per user, window ending {day}",
                                      lambda v: f"{v:,.0f} min"),
        "by_plays": charts.bar_chart(_named(by_plays, names), "ClickNum", "Top videos by plays", lambda v: f"{v:,.0f}"),
        "by_traffic": charts.bar_chart(_named(by_traffic, names), "Traffic", "Top videos by traffic",
                                       lambda v: f"{v:,.0f}"),
        "heat": charts.heat_strip(heat["runs"], f"Heat map of {vid or '(no video)'} on {day}", heat["count"],
                                  heat["step"]),
        "curve": charts.line_chart([f"{p['second']:,} s" for p in curve],
                                   [("share of plays", [p["share"] for p in curve], lambda v: f"{100 * v:.1f}%")],
                                   f"Retention curve of {vid or '(no video)'} on {day}", top=1.0),
    }
    links, links_error = _links(request, [day])
    run = links.get(day)
    return _page(request, "day.html", title, day=day, vid=vid, s=dash.day_summary(root, day), root_uri=root.uri(),
                 videos=top["count"], top=_named(by_plays, names), vids=[r["vid"] for r in top["by_plays"]],
                 max_vids=MAX_VIDS, checks=_checks(root, day), max_rows=MAX_ROWS, reasons=dash.reasons(root, day),
                 run=run, links_error=links_error, charts=svgs, windows=_windows_rows(root, day),
                 late=dash.late_plays(root, day, run and run["run_id"]),
                 lost=dash.accepted_missing(root, [day]).get(day))


def _windows_rows(root, day: str) -> list[dict]:
    """The day's windows (``dash.windows``), each with its name: the day page's table and CSV."""
    from include import dashboard as dash
    from video_analytics.dashboard import WINDOW_NAMES

    return [{"window": w, "name": WINDOW_NAMES[w], **p} for w, p in dash.windows(root, [day])[day].items()]


def _named(rows: list[dict], names: dict[str, str]) -> list[dict]:
    """Rows with ``category``: the catalog's name for the kid, or the kid itself when it has none."""
    return [{**r, "category": names.get(str(r.get("kid")), r.get("kid"))} for r in rows]


def _checks(root, day: str) -> list[tuple[str, bool]]:
    from include import dashboard as dash

    rep = dash.report(root, day) or {}
    return [(f"{sec}.{c['name']}", c["ok"]) for sec, cs in rep.get("checks", {}).items() for c in cs]


@router.get("/day/{day}", response_class=HTMLResponse)
def day_page(request: Request, day: str, vid: str | None = None):
    from include import dashboard as dash

    d = _day_or_none(day)
    if d is None:
        return _notice(request, "Video analytics", "not_a_day", 404, text=day)
    if d not in dash.days(_root()):
        return _notice(request, f"Day {d}", "no_day", 404, day=d)
    return _day_page(request, f"Day {d}", d, vid)


CSV_TABLES = ("summary", "windows", "top-plays", "checks", "rejects", "quarantine", "retention")
WINDOW_CSV = ["users", "online_seconds", "per_user", "status"]


def _csv(name: str, header: list[str], rows) -> Response:
    from video_analytics.dashboard import csv_text

    return Response(csv_text(header, rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})


@router.get("/days.csv")
def days_csv(request: Request, days: int = Query(30, ge=1, le=366)):
    """The overview's table: one row per calendar day (a day without results says so)."""
    from include import dashboard as dash

    hist = dash.timeline(_root(), days, dt.datetime.now(dt.UTC).date())
    links, _ = _links(request, [h["day"] for h in hist])
    keys = ["users", "online_seconds", "plays", "rows_in", "rejects", "reject_rate", "unique_plays", "quarantined",
            "quarantine_rate", "verify"]
    rows = [[h["day"], "no" if h["missing"] else "yes", *(h[k] for k in keys), "; ".join(h["failed"]),
             links.get(h["day"], {}).get("run_id"), links.get(h["day"], {}).get("state"),
             *(h["windows"][w]["users"] for w in dash.WINDOWS), (h["late"] or {}).get("count", 0),
             (h["accepted_missing"] or {}).get("reason")] for h in reversed(hist)]
    return _csv(f"days-{days}", ["day", "results", *keys, "failed_checks", "run_id", "run_state", "dau", "wau", "mau",
                                 "late_plays", "accepted_missing"], rows)


@router.get("/active-users.csv")
def active_users_csv(days: int = Query(30, ge=1, le=366)):
    """The active-user chart's values: per calendar day, each window's users, online seconds, online
    seconds per user and status (``ok``, ``skipped``, ``none``)."""
    from include import dashboard as dash

    hist = dash.timeline(_root(), days, dt.datetime.now(dt.UTC).date())
    header = ["day", *(f"w{w}_{k}" for w in dash.WINDOWS for k in WINDOW_CSV)]
    rows = [[h["day"], *(h["windows"][w][k] for w in dash.WINDOWS for k in WINDOW_CSV)] for h in reversed(hist)]
    return _csv(f"active-users-{days}", header, rows)


def _day_table(root, day: str, table: str, vid: str | None) -> tuple[list[str], list]:
    """The header and rows of one of the day page's tables (``CSV_TABLES``)."""
    from include import dashboard as dash

    if table == "summary":
        s = dash.day_summary(root, day)
        return ["field", "value"], [[k, v if not isinstance(v, list) else "; ".join(v)] for k, v in s.items()]
    if table == "top-plays":
        top = (dash.top_videos(root, day, MAX_VIDS) or {}).get("by_plays", [])
        return ["vid", "kid", "category", "plays", "traffic"], [
            [r["vid"], r["kid"], r["category"], r["ClickNum"], r["Traffic"]] for r in _named(top, _names(root))]
    if table == "windows":
        return ["window", "name", *WINDOW_CSV, "missing_days"], [
            [r["window"], r["name"], *(r[k] for k in WINDOW_CSV), "; ".join(r["missing_days"])]
            for r in _windows_rows(root, day)]
    if table == "checks":
        return ["check", "ok"], [[n, ok] for n, ok in _checks(root, day)[:MAX_ROWS]]
    if table in ("rejects", "quarantine"):
        rows = dash.reasons(root, day)[table] or []
        return ["reason", "count", "share"], [[r["reason"], r["count"], r["share"]] for r in rows[:MAX_ROWS]]
    curve = dash.retention_curve(root, day, vid) if vid else []
    return ["vid", "second", "plays", "share"], [[vid, p["second"], p["plays"], p["share"]] for p in curve]


@router.get("/day/{day}/{table}.csv")
def day_csv(day: str, table: str, vid: str | None = None):
    """One table of a day page as CSV (``retention``: the curve of ``vid``, by default the most played)."""
    from include import dashboard as dash

    d = _day_or_none(day)
    root = _root()
    if d is None or table not in CSV_TABLES or d not in dash.days(root):
        return PlainTextResponse(f"no such table; tables: {', '.join(CSV_TABLES)}, for a day with results "
                                 "(YYYY-MM-DD)", status_code=404)
    if table == "retention" and vid is None:
        vid = next(iter(r["vid"] for r in (dash.top_videos(root, d, 1) or {}).get("by_plays", [])), None)
    header, rows = _day_table(root, d, table, vid)
    return _csv(f"{d}-{table}", header, rows)


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
