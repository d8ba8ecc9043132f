"""Liveness, readiness and the metrics endpoint."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from finchapp.metrics import scrape_registry


def live(request: HttpRequest) -> JsonResponse:
    """200 while the process can answer; touches neither the database nor the cache."""
    return JsonResponse({"status": "alive"})


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        # Drop the broken connection so the next probe (and request) reconnects.
        connection.close()
        return f"error: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}"
    return "ok"


def _cache() -> str:
    env = settings.FINCH_ENV
    client = redis.Redis(
        host=env.redis_host,
        port=env.redis_port,
        db=env.redis_cache_db,
        password=env.redis_password or None,
        socket_timeout=env.health_timeout,
        socket_connect_timeout=env.health_timeout,
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"error: {exc}"
    finally:
        client.close()
    return "ok"


def ready(request: HttpRequest) -> JsonResponse:
    """200 when PostgreSQL and Redis answer within FINCH_HEALTH_TIMEOUT_SECONDS, else 503."""
    checks = {"database": _database(), "cache": _cache()}
    ok = all(value == "ok" for value in checks.values())
    return JsonResponse(
        {"status": "ready" if ok else "unready", "checks": checks}, status=200 if ok else 503
    )


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition of every gunicorn worker's metrics (multiprocess mode)."""
    data = generate_latest(scrape_registry(web=True))
    return HttpResponse(data, content_type=CONTENT_TYPE_LATEST)
