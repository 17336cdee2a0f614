"""A small UI view of the daily verification reports (``reports/<day>.json`` in the data root).

Airflow does not protect a plugin's FastAPI app: every route here requires what Airflow's own
API requires to read the DAG's runs (a Bearer JWT from ``/auth/token`` or the UI's ``_token``
cookie, then the auth manager's read access to ``daily_analytics`` runs), else 401/403.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin


def _app():
    import html

    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
    from airflow.api_fastapi.core_api.security import requires_access_dag
    from fastapi import Depends, FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse

    app = FastAPI(title="Video analytics verification reports", dependencies=[
        Depends(requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id="daily_analytics"))])

    def _root():
        # imported per request: loading the plugin must not import the pipeline or its core
        from include.settings import data_root

        return data_root()

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        from video_analytics.conventions import REPORTS_DIR

        root = _root()
        rows = []
        for path in reversed(root.glob(REPORTS_DIR, "*.json")[-60:]):
            day = path.rsplit("/", 1)[-1][:-5]
            rep = root.read_json(REPORTS_DIR, f"{day}.json")
            status = "OK" if rep.get("ok") else "FAILED: " + ", ".join(rep.get("failed", []))
            rows.append(f"<tr><td><a href='{html.escape(day)}'>{html.escape(day)}</a></td>"
                        f"<td>{html.escape(status)}</td></tr>")
        body = "".join(rows) or "<tr><td colspan=2>no reports yet</td></tr>"
        return (f"<html><body><h2>daily_analytics verification</h2><p>{html.escape(root.uri(REPORTS_DIR))}</p>"
                f"<table border=1 cellpadding=4><tr><th>day</th><th>result</th></tr>{body}</table></body></html>")

    @app.get("/{day}")
    def report(day: str):
        from include.verify import summary
        from video_analytics.conventions import REPORTS_DIR

        root = _root()
        if "/" in day or not root.exists(REPORTS_DIR, f"{day}.json"):
            return JSONResponse({"error": f"no report for {day}"}, status_code=404)
        rep = root.read_json(REPORTS_DIR, f"{day}.json")
        return HTMLResponse(f"<html><body><pre>{html.escape(summary(rep))}</pre></body></html>")

    return app


class VerifyReportsPlugin(AirflowPlugin):
    name = "video_verify_reports"
    fastapi_apps = [{"app": _app(), "url_prefix": "/video-reports", "name": "Verification reports"}]
    external_views = [{"name": "Verification reports", "href": "/video-reports/", "destination": "nav",
                       "url_route": "video_reports"}]
