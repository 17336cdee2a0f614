"""What the project's UI plugins (``video_dashboard_plugin``, ``verify_reports_plugin``) share: their
Jinja2 templates (``plugins/templates/``, always autoescaped), the data root, and a FastAPI app whose
every route requires what Airflow's own API requires to read ``daily_analytics`` runs (a Bearer JWT
or the UI's ``_token`` cookie, then the auth manager's read access), else 401/403.

``runs`` reads each day's ``daily_analytics`` run and failed tasks from the metadata DB.

Airflow puts the plugins folder on ``sys.path``, so the plugins import this module by name. It
defines no plugin; loading it imports neither the pipeline nor pandas or pyarrow.
"""

from __future__ import annotations

from pathlib import Path

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

DAG_ID = "daily_analytics"
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"), autoescape=True,
                        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def data_root():
    """The data root, read per request (``include`` is imported here, not when the plugin loads)."""
    from include.settings import data_root as root

    return root()


def app(title: str, router: APIRouter) -> FastAPI:
    """A FastAPI app serving ``router``, every route behind Airflow's read access to ``DAG_ID`` runs."""
    api = FastAPI(title=title, dependencies=[
        Depends(requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=DAG_ID))])
    api.include_router(router)
    api.add_exception_handler(OSError, _unreadable)
    return api


_UNREADABLE = TEMPLATES.from_string(
    "<!doctype html><html><head><meta charset='utf-8'><title>Data root unreadable</title></head><body>"
    "<p id='unreadable'>The data root could not be read: {{ line }}</p></body></html>")


async def _unreadable(request: Request, exc: OSError) -> HTMLResponse:
    """A data root that cannot be read (the object store unreachable, refusing, without the bucket; an object
    that is not what it should be; a local folder refused): HTTP 503 and one line naming the connection and
    the URL (``include.object_store.StoreError``, never the secret), not a 500 and a traceback."""
    import logging

    line = " ".join(str(exc).split())[:500] or type(exc).__name__
    logging.getLogger(__name__).warning("%s %s: the data root could not be read: %s", request.method,
                                        request.url.path, line)
    return HTMLResponse(_UNREADABLE.render(line=line), status_code=503)


MAX_FAILED = 10  # failed tasks listed per run


def runs(days: list[str]) -> dict[str, dict]:
    """The ``DAG_ID`` run of each of ``days`` (``YYYY-MM-DD``: its logical date, unique per DAG) from the
    metadata DB: ``{day: {"run_id", "state", "failed": [(task_id, map_index, try_number)], "more_failed"}}``,
    at most ``MAX_FAILED`` failed tasks per run (the rest counted). Days without a run are left out."""
    import datetime as dt

    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.utils.session import create_session
    from sqlalchemy import select

    if not days:
        return {}
    lo = dt.datetime.combine(dt.date.fromisoformat(min(days)), dt.time(), dt.UTC)
    hi = dt.datetime.combine(dt.date.fromisoformat(max(days)) + dt.timedelta(days=1), dt.time(), dt.UTC)
    wanted = set(days)
    out: dict[str, dict] = {}
    with create_session() as session:
        for run_id, logical, state in session.execute(
                select(DagRun.run_id, DagRun.logical_date, DagRun.state)
                .where(DagRun.dag_id == DAG_ID, DagRun.logical_date >= lo, DagRun.logical_date < hi)):
            day = logical.date().isoformat()
            if day in wanted:
                out[day] = {"run_id": run_id, "state": str(state or ""), "failed": [], "more_failed": 0}
        by_run = {r["run_id"]: r for r in out.values()}
        if by_run:
            for run_id, task_id, map_index, try_number in session.execute(
                    select(TI.run_id, TI.task_id, TI.map_index, TI.try_number)
                    .where(TI.dag_id == DAG_ID, TI.run_id.in_(list(by_run)), TI.state == "failed")
                    .order_by(TI.run_id, TI.task_id, TI.map_index)):
                r = by_run[run_id]
                if len(r["failed"]) < MAX_FAILED:
                    r["failed"].append((task_id, int(map_index), int(try_number or 0)))
                else:
                    r["more_failed"] += 1
    return out
