"""Liveness, readiness and the metrics endpoint."""

from __future__ import annotations

from typing import NamedTuple

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from finchapp.metrics import scrape_registry


def live(request: HttpRequest) -> JsonResponse:
    """200 while the process can answer; touches neither the database nor the cache."""
    return JsonResponse({"status": "alive"})


class Dependencies(NamedTuple):
    """What each backing service raised when asked; None when it answered."""

    database: DatabaseError | None
    cache: redis.RedisError | None


def check_dependencies() -> Dependencies:
    """Ask PostgreSQL (SELECT 1) and Redis (PING on the cache database) whether they answer.

    Output: the error each raised, or None. Redis waits at most FINCH_HEALTH_TIMEOUT_SECONDS; a
    broken database connection is closed so the next use reconnects. Shared by /healthz/ready
    and `manage.py check_ready`, which word the errors differently."""
    return Dependencies(database=_database(), cache=_cache())


def _database() -> DatabaseError | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        # Drop the broken connection so the next probe (and request) reconnects.
        connection.close()
        return exc
    return None


def _cache() -> redis.RedisError | None:
    env = settings.FINCH_ENV
    client = env.redis_client(env.redis_cache_db)
    try:
        client.ping()
    except redis.RedisError as exc:
        return exc
    finally:
        client.close()
    return None


def ready(request: HttpRequest) -> JsonResponse:
    """200 when PostgreSQL and Redis answer within FINCH_HEALTH_TIMEOUT_SECONDS, else 503."""
    db, cache = check_dependencies()
    checks = {
        # as the body always read: `!r` quotes the whole first line, not only a blank error
        "database": "ok"
        if db is None
        else f"error: {str(db).strip().splitlines()[0] if str(db).strip() else db!r}",
        "cache": "ok" if cache is None else f"error: {cache}",
    }
    ok = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ready" if ok else "unready", "checks": checks}, status=200 if ok else 503
    )


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition of every gunicorn worker's metrics (multiprocess mode)."""
    data = generate_latest(scrape_registry(web=True))
    return HttpResponse(data, content_type=CONTENT_TYPE_LATEST)
