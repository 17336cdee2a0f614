"""A small UI view of the daily verification reports (``reports/<day>.json`` in the data root).

Pages are Jinja2 templates (``plugins/templates/verify_reports/``) rendered with autoescaping; the
index lists the latest ``LATEST`` reports and says how many older ones it leaves out. Airflow does
not protect a plugin's FastAPI app: every route here requires what Airflow's own API requires to read
the DAG's runs (``video_ui.app``: a Bearer JWT from ``/auth/token`` or the UI's ``_token`` cookie,
then the auth manager's read access to ``daily_analytics`` runs), else 401/403.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse
from video_ui import TEMPLATES, app
from video_ui import data_root as _root

LATEST = 60
router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def index() -> HTMLResponse:
    from video_analytics.conventions import REPORTS_DIR

    root = _root()
    paths = root.glob(REPORTS_DIR, "*.json")
    rows = []
    for path in reversed(paths[-LATEST:]):
        day = path.rsplit("/", 1)[-1][:-5]
        rep = root.read_json(REPORTS_DIR, f"{day}.json")
        rows.append((day, "OK" if rep.get("ok") else "FAILED: " + ", ".join(rep.get("failed", []))))
    return HTMLResponse(TEMPLATES.get_template("verify_reports/index.html").render(
        reports_uri=root.uri(REPORTS_DIR), rows=rows, total=len(paths)))


@router.get("/{day}")
def report(day: str):
    from include.verify import summary
    from video_analytics.conventions import REPORTS_DIR

    root = _root()
    if "/" in day or not root.exists(REPORTS_DIR, f"{day}.json"):
        return JSONResponse({"error": f"no report for {day}"}, status_code=404)
    rep = root.read_json(REPORTS_DIR, f"{day}.json")
    return HTMLResponse(TEMPLATES.get_template("verify_reports/report.html").render(summary=summary(rep)))


class VerifyReportsPlugin(AirflowPlugin):
    name = "video_verify_reports"
    fastapi_apps = [{"app": app("Video analytics verification reports", router), "url_prefix": "/video-reports", "name": "Verification reports"}]
    external_views = [{"name": "Verification reports", "href": "/video-reports/", "destination": "nav",
                       "url_route": "video_reports"}]
