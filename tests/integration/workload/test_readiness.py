"""/healthz/ready follows PostgreSQL: 503 while it is down, 200 again once it is back."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from finchsim.platform.local import LocalPostgres, LocalRedis
from tests.integration.workload.conftest import service_env
from tests.integration.workload.helpers import Backend, manage, wait_for

pytestmark = pytest.mark.integration


def test_readiness_fails_while_postgres_is_down_and_recovers(
    private_dir: Path, redis_server: LocalRedis, start_backend: Callable[..., Backend]
) -> None:
    pg = LocalPostgres(private_dir / "pg", password="ready-test")
    try:
        pg.start()
        env = service_env(pg, redis_server, "finch", FINCH_HEALTH_TIMEOUT_SECONDS="1")
        assert manage(env, "migrate", "--noinput").returncode == 0
        api = start_backend(env, workers=1)
        assert api.get("/healthz/ready").status == 200
        pg.stop()
        started = time.monotonic()
        down = api.get("/healthz/ready")
        assert down.status == 503, down.body
        assert down.json()["checks"]["database"].startswith("error")
        assert down.json()["checks"]["cache"] == "ok"
        assert time.monotonic() - started < 5  # a short timeout, not a hung probe
        assert api.get("/healthz/live").status == 200  # liveness must not follow the database
        pg.start()
        wait_for(lambda: api.get("/healthz/ready").status == 200, 15, "ready after restart")
        assert api.get("/api/meta").status == 200  # requests reconnect too, not only the probe
    finally:
        pg.stop()


def test_readiness_fails_when_redis_is_unreachable(
    workload_env: dict[str, str], start_backend: Callable[..., Backend]
) -> None:
    api = start_backend(workload_env, workers=1, REDIS_PORT="1", FINCH_HEALTH_TIMEOUT_SECONDS="1")
    response = api.get("/healthz/ready")
    assert response.status == 503
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["cache"].startswith("error")
