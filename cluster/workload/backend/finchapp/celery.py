"""The Celery app (``celery -A finchapp worker|beat``) and the worker's metrics endpoint.

The worker's pool processes count tasks into prometheus-client multiprocess files
(PROMETHEUS_MULTIPROC_DIR, one directory per worker pod); the main process serves them all on
FINCH_WORKER_METRICS_ADDR:FINCH_WORKER_METRICS_PORT (0 disables).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_shutdown, worker_ready

from finchapp.env import exit_on_config_error, read_env

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finchapp.settings")
# Fail before Celery starts, with the same one-line message as manage.py and gunicorn.
with exit_on_config_error():
    read_env()

app = Celery("finchapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
log = logging.getLogger(__name__)


@worker_init.connect
def _clear_metrics_dir(**_: Any) -> None:
    """Drop counter files of a previous run before the pool forks (same directory reused)."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path and os.path.isdir(path):
        for name in os.listdir(path):
            if name.endswith(".db"):
                os.remove(os.path.join(path, name))


@worker_ready.connect
def _serve_metrics(**_: Any) -> None:
    from prometheus_client import start_http_server

    from finchapp.metrics import scrape_registry

    env = read_env()
    if env.worker_metrics_port == 0:
        return
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        log.warning("PROMETHEUS_MULTIPROC_DIR unset: task counters of pool processes are lost")
    start_http_server(
        env.worker_metrics_port, addr=env.worker_metrics_addr, registry=scrape_registry(web=False)
    )
    log.info("metrics on http://%s:%d/metrics", env.worker_metrics_addr, env.worker_metrics_port)


@worker_process_shutdown.connect
def _mark_dead(pid: int | None = None, **_: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid or os.getpid())
