"""gunicorn settings for the Finch backend, all from the environment.

    gunicorn -c gunicorn.conf.py        (from this directory; the app is finchapp.wsgi)

GUNICORN_BIND (127.0.0.1:8000; 0.0.0.0:8000 in a pod), GUNICORN_WORKERS (2), GUNICORN_THREADS (1:
sync workers; > 1: gthread), GUNICORN_TIMEOUT (30 s), GUNICORN_MAX_REQUESTS (0: never recycle).
Validates the whole configuration first, so a bad cost profile stops the master with one line.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from finchapp.env import EnvReader, exit_on_config_error, fail, read_env

with exit_on_config_error():
    read_env()
_r = EnvReader(os.environ)
bind = [_r.text("GUNICORN_BIND", "127.0.0.1:8000")]
# Chosen: 2 workers x 1 thread, the measured sweet spot for a 500m CPU limit (see README).
workers = _r.integer("GUNICORN_WORKERS", 2, 1, 64)
threads = _r.integer("GUNICORN_THREADS", 1, 1, 64)
worker_class = "gthread" if threads > 1 else "sync"
timeout = _r.integer("GUNICORN_TIMEOUT", 30, 1, 3600)
graceful_timeout = _r.integer("GUNICORN_GRACEFUL_TIMEOUT", 25, 1, 3600)
max_requests = _r.integer("GUNICORN_MAX_REQUESTS", 0, 0, 10**9)
max_requests_jitter = max_requests // 10
keepalive = 5  # behind ingress-nginx, which keeps upstream connections alive
if _r.problems:
    fail("invalid configuration:\n  " + "\n  ".join(_r.problems))

wsgi_app = "finchapp.wsgi:application"
chdir = os.path.dirname(os.path.abspath(__file__))
accesslog = None  # one line per request would dominate load tests; metrics count requests
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Heartbeat files: /tmp is an emptyDir in the pod (read-only root filesystem).
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR") or None
proc_name = "finch-backend"

# prometheus-client multiprocess mode: set before any worker imports prometheus_client, so
# every forked worker writes its samples here and /metrics sums them.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="finch-prometheus-")
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def on_starting(server: Any) -> None:
    """Drop a previous run's sample files (the directory may be reused across restarts)."""
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))


def child_exit(server: Any, worker: Any) -> None:
    """Retire a dead worker's live gauges (its counters stay in the sums, as they should)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
