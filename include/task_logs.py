"""Airflow task logs on the object store, readable from any machine (the UI, any API server).

Enabled with two settings on every Airflow machine (scripts/env.sh, docker-compose.yml, docs/SCALING.md):

* ``AIRFLOW__LOGGING__LOGGING_CONFIG_CLASS=include.task_logs.LOGGING_CONFIG``
* ``VIDEO_TASK_LOG_URL=s3://bucket/task-logs`` (any ``DataRoot`` URL; unset: task logs stay local).

``LOGGING_CONFIG`` is Airflow's default; ``REMOTE_TASK_LOG`` (read by Airflow beside it) uploads each try's
log when the try ends (one PUT) and reads it back for the UI. It is written on the project's own S3 client
(``include.object_store``, credentials from the ``video_storage`` connection, which the worker's supervisor
fetches from the API server: ``DEFAULT_REMOTE_CONN_ID``) because the amazon provider's S3 task handler
needs boto, whose pins conflict with Airflow's. ``[logging] remote_logging`` stays False: True would make
Airflow's default module import that provider.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from airflow.config_templates.airflow_local_settings import BASE_LOG_FOLDER, DEFAULT_LOGGING_CONFIG

from include.settings import STORAGE_CONN_ID, task_log_url

LOGGING_CONFIG = copy.deepcopy(DEFAULT_LOGGING_CONFIG)


class ObjectStoreLogIO:
    """Airflow's ``RemoteLogIO`` on a ``DataRoot`` URL: ``<url>/<the log's path under the log folder>``."""

    processors: tuple = ()

    def __init__(self, base_log_folder: str, remote_base: str, delete_local_copy: bool = False):
        self.base_log_folder, self.remote_base = Path(base_log_folder), remote_base.rstrip("/")
        self.delete_local_copy = delete_local_copy

    def _root(self):
        from include.storage import DataRoot

        return DataRoot(self.remote_base)

    def upload(self, path: os.PathLike | str, ti=None) -> None:
        """Put the finished try's log file (absolute, or relative to the log folder) on the store."""
        local = Path(path) if Path(path).is_absolute() else self.base_log_folder / path
        if not local.is_file():
            return
        self._root().write_bytes(local.read_bytes(), local.relative_to(self.base_log_folder).as_posix())
        if self.delete_local_copy:
            local.unlink(missing_ok=True)

    def read(self, relative_path: str, ti) -> tuple[list[str], list[str] | None]:
        """``([where], [the log's text])``; ``([what happened], None)`` when it is absent or unreadable."""
        url = f"{self.remote_base}/{relative_path}"
        try:
            root = self._root()
            data = root.read_bytes(relative_path)
        except FileNotFoundError:
            return [f"no log at {url} (yet)"], None
        except OSError as exc:  # the store is down or refuses: say so in the UI, never fail the page
            return [f"could not read {url}: {exc}"], None
        return [url], [data.decode(errors="replace")]


REMOTE_BASE = task_log_url()
REMOTE_TASK_LOG = ObjectStoreLogIO(BASE_LOG_FOLDER, REMOTE_BASE) if REMOTE_BASE else None
DEFAULT_REMOTE_CONN_ID = STORAGE_CONN_ID if REMOTE_BASE.startswith(("s3://", "s3a://")) else None
