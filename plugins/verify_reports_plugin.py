"""A small UI view of the daily verification reports (``reports/<day>.json`` in the data root).

Pages are Jinja2 templates (``plugins/templates/verify_reports/``) rendered with autoescaping; the
index lists the latest ``LATEST`` reports and says how many older ones it leaves out. Airflow does
not protect a plugin's FastAPI app: every route here requires what Airflow's own API requires to read
the DAG's runs (a Bearer JWT from ``/auth/token`` or the UI's ``_token`` cookie, then the auth
manager's read access to ``daily_analytics`` runs), else 401/403.
"""

from __future__ import annotations

from pathlib import Path

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import requires_access_dag
from airflow.plugins_manager import AirflowPlugin
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

LATEST = 60
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"), autoescape=True,
                        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
router = APIRouter()


def _root():
    # imported per request: loading the plugin must not import the pipeline or its core
    from include.settings import data_root

    return data_root()


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


def _app() -> FastAPI:
    app = FastAPI(title="Video analytics verification reports", dependencies=[
        Depends(requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id="daily_analytics"))])
    app.include_router(router)
    return app


class VerifyReportsPlugin(AirflowPlugin):
    name = "video_verify_reports"
    fastapi_apps = [{"app": _app(), "url_prefix": "/video-reports", "name": "Verification reports"}]
    external_views = [{"name": "Verification reports", "href": "/video-reports/", "destination": "nav",
                       "url_route": "video_reports"}]
