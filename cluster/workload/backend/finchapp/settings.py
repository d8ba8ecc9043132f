"""Django settings for the reference Finch backend: everything comes from the environment.

An invalid variable or cost profile stops the process here with one clear message
(finchapp.env.fail), so gunicorn, celery and manage.py all fail the same way.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from finchapp.env import exit_on_config_error, read_env

with exit_on_config_error():
    FINCH_ENV = read_env()
_E = FINCH_ENV

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = _E.secret_key
DEBUG = _E.debug
ALLOWED_HOSTS = _E.allowed_hosts
FINCH_CORS_ALLOWED_ORIGINS = _E.cors_origins

# No contrib apps (admin, auth, sessions): an API-only stand-in keeps the schema to what it uses.
INSTALLED_APPS = ["django_prometheus", "finchapp.apps.FinchAppConfig"]
MIDDLEWARE = [
    # Outermost, so it sees the final status of every response, 500s included.
    "finchapp.middleware.RequestMetricsMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "finchapp.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
ROOT_URLCONF = "finchapp.urls"
WSGI_APPLICATION = "finchapp.wsgi.application"
APPEND_SLASH = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {
    "default": {
        # django-prometheus wraps Django's PostgreSQL backend (psycopg 3) to count queries/errors.
        "ENGINE": "django_prometheus.db.backends.postgresql",
        "HOST": _E.pg_host,
        "PORT": _E.pg_port,
        "NAME": _E.pg_db,
        "USER": _E.pg_user,
        "PASSWORD": _E.pg_password,
        "CONN_MAX_AGE": _E.conn_max_age,
        # Persistent connections survive a PostgreSQL restart only if checked before reuse.
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {"connect_timeout": _E.pg_connect_timeout},
    }
}

CACHES = {
    "default": {
        "BACKEND": "django_prometheus.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://{_E.redis_host}:{_E.redis_port}/{_E.redis_cache_db}",
        "KEY_PREFIX": "finch",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "PASSWORD": _E.redis_password or None,
            "SOCKET_CONNECT_TIMEOUT": _E.health_timeout,
            "SOCKET_TIMEOUT": max(_E.health_timeout, 5.0),
        },
    }
}

_broker_auth = f":{quote(_E.redis_password, safe='')}@" if _E.redis_password else ""
CELERY_BROKER_URL = f"redis://{_broker_auth}{_E.redis_host}:{_E.redis_port}/{_E.redis_broker_db}"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Chosen: 300 s (Celery's default is 1 h) so a task held by a SIGKILLed worker is redelivered
    # within a drill's duration; tasks must outlast no more than this.
    "visibility_timeout": _E.visibility_timeout,
    "socket_connect_timeout": 5,
    "socket_timeout": 10,
}
# Outcomes live in the TaskRecord table (countable), not in a result backend.
CELERY_TASK_IGNORE_RESULT = True
# At-least-once: ack after the task ran, requeue when the worker process dies mid-task.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CONCURRENCY = _E.celery_concurrency
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BEAT_SCHEDULE = {
    "rollup-daily": {"task": "finch.rollup_daily", "schedule": _E.beat_interval},
}
# The root filesystem is read-only in the pods: the schedule file goes to a mounted volume.
CELERY_BEAT_SCHEDULE_FILENAME = os.path.join(_E.beat_schedule_dir, "celerybeat-schedule")

# prometheus-client multiprocess mode writes one file per process here; it must exist first.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
