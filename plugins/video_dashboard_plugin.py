"""The video analytics dashboard in the Airflow UI: an external view in the nav (*Video dashboard*)
and a tab on every run of ``daily_analytics`` (*Day results*), served by a FastAPI app.

Charts are SVG drawn on the server (``video_analytics.charts``): no JavaScript, no CDN, so the UI works
with no internet. Every route requires what Airflow's own API requires to read ``daily_analytics`` runs
(a Bearer JWT or the UI's ``_token`` cookie, then the auth manager's read access), else 401/403. The
pages read the data root only (``include.dashboard``), imported per request: loading the plugin must
not import the pipeline, pandas or pyarrow.
"""

from airflow.plugins_manager import AirflowPlugin

DAG_ID = "daily_analytics"
PREFIX = "/video-dashboard"

CSS = """
body{font-family:sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:18px 0 6px}
.muted{color:#666;font-size:12px} .card{border:1px solid #ddd;border-radius:6px;padding:10px;margin:10px 0}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4} td.l,th.l{text-align:left} .passed{color:#2a7d2a;font-weight:bold}
.failed{color:#c62828;font-weight:bold} .none{color:#777} .row{display:flex;gap:16px;flex-wrap:wrap}
nav a{margin-right:12px} .empty{background:#fff8e1;border:1px solid #f0c36d;padding:14px;border-radius:6px}
"""


def _app():
    import datetime as dt
    import html

    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag
    from fastapi import Depends, FastAPI, Query, Request
    from fastapi.responses import HTMLResponse

    app = FastAPI(title="Video analytics dashboard", dependencies=[
        Depends(requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=DAG_ID))])
    e = html.escape

    def _root():
        from include.settings import data_root

        return data_root()

    def _base(request: Request) -> str:
        return request.scope.get("root_path", "").rstrip("/")

    def _page(request: Request, title: str, body: str, status: int = 200) -> HTMLResponse:
        b = _base(request)
        return HTMLResponse(
            f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{CSS}</style>"
            f"</head><body><nav><a href='{b}/'>Overview</a>"
            f"<a href='{b.rsplit(PREFIX, 1)[0]}/video-reports/'>Verification reports</a>"
            f"</nav><h1>{e(title)}</h1>{body}</body></html>", status_code=status)

    def _empty(root) -> str:
        return (f"<div class='empty' id='empty-state'><b>No results yet.</b> The dashboard shows what "
                f"<code>{DAG_ID}</code> wrote to the data root <code>{e(root.uri())}</code>, and nothing is there "
                "yet.<ol><li>Put the day's action log in the <code>log_dir</code> Variable's folder and let the "
                "collector fill <code>T_endlist_&lt;YYYYMMDD&gt;</code> in Redis (or run <code>make demo</code> "
                "for sample data).</li><li>Trigger a run: <i>Dags → daily_analytics → Trigger</i>, with the "
                "day to process as the logical date (or backfill a range).</li><li>When the run's "
                "<code>verify</code> task has finished, reload this page.</li></ol></div>")

    def _no_day(request: Request, d: str | None) -> str:
        from include import dashboard as dash

        root = _root()
        if not dash.days(root):
            return _empty(root)
        return (f"<p id='no-day' class='empty'>No results for {e(str(d))} in <code>{e(root.uri())}</code> yet: "
                "its run has not written them (still running, failed before its results, or not run). "
                f"<a href='{_base(request)}/'>Days with results</a>.</p>")

    def _day_or_none(text: str) -> str | None:
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            return None

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request, days: int = Query(30, ge=1, le=366)):
        from include import dashboard as dash
        from video_analytics import charts
        from video_analytics.dashboard import fmt_hours, fmt_int, fmt_pct

        root = _root()
        hist = dash.history(root, days)
        if not hist:
            return _page(request, "Video analytics", _empty(root))
        b = _base(request)
        labels = [h["day"][5:] for h in hist]
        activity = charts.line_chart(labels, [
            ("active users (window)", [h["users"] for h in hist], lambda v: f"{v:,.0f}"),
            ("online time (hours)", [None if h["online_seconds"] is None else h["online_seconds"] / 3600
                                     for h in hist], lambda v: f"{v:,.0f} h"),
        ], "Active users and online time per day")
        thr_r = hist[-1]["reject_threshold"]
        thr_q = hist[-1]["quarantine_threshold"]
        rejects = charts.line_chart(labels, [("reject rate", [h["reject_rate"] for h in hist],
                                              lambda v: f"{100 * v:.2f}%")],
                                    "Reject rate per day", threshold=(f"threshold {100 * thr_r:.2f}%", thr_r))
        quarantine = charts.line_chart(labels, [("quarantine rate", [h["quarantine_rate"] for h in hist],
                                                 lambda v: f"{100 * v:.2f}%")],
                                       "Quarantine rate per day", threshold=(f"threshold {100 * thr_q:.2f}%", thr_q))
        rows = "".join(
            f"<tr data-day='{e(h['day'])}'><td class='l'><a href='{b}/day/{e(h['day'])}'>{e(h['day'])}</a></td>"
            f"<td class='users'>{fmt_int(h['users'])}</td><td class='online'>{fmt_int(h['online_seconds'])}</td>"
            f"<td>{fmt_hours(h['online_seconds'])}</td><td class='plays'>{fmt_int(h['plays'])}</td>"
            f"<td class='reject-rate'>{fmt_pct(h['reject_rate'])}</td>"
            f"<td class='quarantine-rate'>{fmt_pct(h['quarantine_rate'])}</td>"
            f"<td class='verify l {h['verify']}'>{e(h['verify'])}{': ' + e(', '.join(h['failed'])) if h['failed'] else ''}"
            f"</td></tr>" for h in reversed(hist))
        body = (
            f"<p class='muted'>Last {len(hist)} day(s) with results in <code>{e(root.uri())}</code>. "
            f"<a href='{b}/?days=7'>7</a> · <a href='{b}/?days=30'>30</a> · <a href='{b}/?days=60'>60</a> days. "
            "Online time and users are those of each day's window (<code>window_days</code>, default 7) "
            "ending that day.</p>"
            f"<div class='card' id='chart-activity'><b>Active users and online time per day</b><br>{activity}</div>"
            f"<div class='card' id='chart-rejects'><b>Rejected log rows per day</b> (<code>online_time/D/totals.json</code>: rejects / rows_in)<br>{rejects}</div>"
            f"<div class='card' id='chart-quarantine'><b>Quarantined plays per day</b> (<code>plays/D/ingest.json</code>: quarantined / unique)<br>{quarantine}</div>"
            "<h2>Days</h2><table id='days'><tr><th class='l'>day</th><th>active users</th><th>online seconds</th>"
            "<th>online time</th><th>plays</th><th>reject rate</th><th>quarantine rate</th><th class='l'>verify</th>"
            f"</tr>{rows}</table>")
        return _page(request, "Video analytics", body)

    def _day_body(request: Request, day: str, vid: str | None) -> str:
        from include import dashboard as dash
        from video_analytics import charts
        from video_analytics.dashboard import fmt_int, fmt_pct, histogram

        root = _root()
        b = _base(request)
        s = dash.day_summary(root, day)
        secs = dash.online_seconds(root, day)
        minutes = secs / 60 if secs is not None else []
        hist_svg = charts.histogram(histogram(minutes, bins=20), f"Online time per user, window ending {day}",
                                    lambda v: f"{v:,.0f} min")
        top = dash.top_videos(root, day, 10)
        by_plays = charts.bar_chart(top["by_plays"] if top else [], "ClickNum", "Top videos by plays",
                                    lambda v: f"{v:,.0f}")
        by_traffic = charts.bar_chart(top["by_traffic"] if top else [], "Traffic", "Top videos by traffic",
                                      lambda v: f"{v:,.0f}")
        vids = [r["vid"] for r in (dash.top_videos(root, day, 100) or {}).get("by_plays", [])]
        if vid is None and top and top["by_plays"]:
            vid = top["by_plays"][0]["vid"]
        runs = dash.heat_map(root, day, vid) if vid else None
        heat_svg = charts.heat_strip(runs or [], f"Heat map of {vid or '(no video)'} on {day}")
        options = "".join(f"<option value='{e(v)}'></option>" for v in vids)
        top_rows = "".join(
            f"<tr data-vid='{e(r['vid'])}'><td class='l'>{e(r['vid'])}</td><td class='l'>{e(str(r['kid']))}</td>"
            f"<td class='clicknum'>{fmt_int(r['ClickNum'])}</td><td class='traffic'>{r['Traffic']:,.2f}</td></tr>"
            for r in (top["by_plays"] if top else []))
        rep = dash.report(root, day)
        checks = ""
        if rep:
            checks = "".join(
                f"<tr><td class='l'>{e(sec)}.{e(c['name'])}</td><td class='l {'passed' if c['ok'] else 'failed'}'>"
                f"{'ok' if c['ok'] else 'FAIL'}</td></tr>" for sec, cs in rep.get("checks", {}).items() for c in cs)
        return (
            f"<p class='muted'>From <code>{e(root.uri())}</code>: <code>online_time/{day}/</code>, "
            f"<code>plays/{day.replace('-', '')}/</code>, <code>reports/{day}.json</code>.</p>"
            f"<table id='day-summary'><tr><th class='l'>verify</th><td class='verify l {s['verify']}'>{e(s['verify'])}"
            f"</td></tr><tr><th class='l'>active users (window)</th><td class='users'>{fmt_int(s['users'])}</td></tr>"
            f"<tr><th class='l'>online seconds</th><td class='online'>{fmt_int(s['online_seconds'])}</td></tr>"
            f"<tr><th class='l'>plays</th><td class='plays'>{fmt_int(s['plays'])}</td></tr>"
            f"<tr><th class='l'>videos</th><td class='videos'>{fmt_int(top['count'] if top else None)}</td></tr>"
            f"<tr><th class='l'>reject rate</th><td class='reject-rate'>{fmt_pct(s['reject_rate'])} "
            f"(threshold {fmt_pct(s['reject_threshold'])})</td></tr>"
            f"<tr><th class='l'>quarantine rate</th><td class='quarantine-rate'>{fmt_pct(s['quarantine_rate'])} "
            f"(threshold {fmt_pct(s['quarantine_threshold'])})</td></tr></table>"
            f"<div class='card' id='chart-histogram'><b>Online time per user</b> (minutes, window ending {day})<br>{hist_svg}</div>"
            f"<div class='row'><div class='card' id='chart-top-plays'><b>Top videos by plays</b><br>{by_plays}</div>"
            f"<div class='card' id='chart-top-traffic'><b>Top videos by traffic</b><br>{by_traffic}</div></div>"
            f"<div class='card' id='chart-heat'><b>Heat map</b> (merged segments over the video timeline)<form method='get' action='{b}/day/{day}'>Video: "
            f"<input name='vid' list='vids' value='{e(vid or '')}' size='12'><datalist id='vids'>{options}</datalist> "
            "<button>show</button> <span class='muted'>any vid of the day; the list offers the 100 most played</span>"
            "</form>"
            f"{heat_svg}</div>"
            "<h2>Top videos by plays</h2><table id='top-plays'><tr><th class='l'>vid</th><th class='l'>category</th>"
            f"<th>plays</th><th>traffic</th></tr>{top_rows}</table>"
            + (f"<h2>Verify checks</h2><table id='checks'>{checks}</table>" if checks else ""))

    @app.get("/day/{day}", response_class=HTMLResponse)
    def day_page(request: Request, day: str, vid: str | None = None):
        from include import dashboard as dash

        d = _day_or_none(day)
        if d is None:
            return _page(request, "Video analytics", f"<p>Not a day: {e(day)} (YYYY-MM-DD)</p>", 404)
        if d not in dash.days(_root()):
            return _page(request, f"Day {d}", _no_day(request, d), 404)
        return _page(request, f"Day {d}", _day_body(request, d, vid))

    def _run_day(dag_id: str, run_id: str) -> str | None:
        """The day a run processed: its logical date, from the metadata DB (a run id's date is not
        always it: a backfill run of D is ``backfill__<D+1>...``); ``None`` for an unknown run."""
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            ld = session.scalar(select(DagRun.logical_date).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        return None if ld is None else ld.date().isoformat()

    @app.get("/run/{dag_id}/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, dag_id: str, run_id: str, vid: str | None = None):
        from include import dashboard as dash

        if dag_id != DAG_ID:
            return _page(request, "Day results", f"<p>This view shows the results of <code>{DAG_ID}</code> runs "
                                                 f"only (this is <code>{e(dag_id)}</code>).</p>")
        d = _run_day(dag_id, run_id)
        if d is None:
            return _page(request, "Day results", f"<p id='no-run'>No run <code>{e(run_id)}</code> of "
                                                 f"<code>{DAG_ID}</code> with a logical date.</p>", 404)
        if d not in dash.days(_root()):
            return _page(request, "Day results", f"<p>Run <code>{e(run_id)}</code> (day {e(str(d))}):</p>"
                         + _no_day(request, d))
        return _page(request, f"Day {d} (run {run_id})", _day_body(request, d, vid))

    return app


class VideoDashboardPlugin(AirflowPlugin):
    name = "video_dashboard"
    fastapi_apps = [{"app": _app(), "url_prefix": PREFIX, "name": "Video dashboard"}]
    external_views = [
        {"name": "Video dashboard", "href": f"{PREFIX}/", "destination": "nav", "url_route": "video_dashboard"},
        {"name": "Day results", "href": f"{PREFIX}/run/{{DAG_ID}}/{{RUN_ID}}", "destination": "dag_run",
         "url_route": "video_day_results"},
    ]
