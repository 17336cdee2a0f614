"""What the project's UI plugins (``video_dashboard_plugin``, ``verify_reports_plugin``) share: their
Jinja2 templates (``plugins/templates/``, always autoescaped), the data root, and a FastAPI app whose
every route requires what Airflow's own API requires to read ``daily_analytics`` runs (a Bearer JWT
or the UI's ``_token`` cookie, then the auth manager's read access), else 401/403.

Airflow puts the plugins folder on ``sys.path``, so the plugins import this module by name. It
defines no plugin; loading it imports neither the pipeline nor pandas or pyarrow.
"""

from __future__ import annotations

from pathlib import Path

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import APIRouter, Depends, FastAPI
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
    return api
