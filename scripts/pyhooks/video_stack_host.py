"""``[core] hostname_callable`` for several Celery workers on one machine (scripts/airflow_stack.sh).

Each local worker gets ``VIDEO_WORKER_HOSTNAME`` = its ``--celery-hostname`` (``worker1@<host>``, ...),
so task instances record which worker ran them. Without the variable: the machine's FQDN, as
Airflow's default ``airflow.utils.net.getfqdn``.
"""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    return os.environ.get("VIDEO_WORKER_HOSTNAME") or socket.getfqdn()
