"""Fixtures for the reference workload: a migrated, seeded database per purpose, gunicorn and
Celery processes that are always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from finchsim.platform.local import LocalPostgres, LocalRedis
from tests.integration.workload.helpers import Backend, Worker, base_env, manage


def service_env(pg: LocalPostgres, redis: LocalRedis, dbname: str, **extra: str) -> dict[str, str]:
    """Workload environment pointing at `dbname` on `pg` and at `redis`."""
    env = base_env(**pg.params.env(), **redis.params.env(), **extra)
    env["POSTGRES_DB"] = dbname
    return env


def prepare_database(
    pg: LocalPostgres, redis: LocalRedis, dbname: str, size: str
) -> dict[str, str]:
    """Create `dbname`, migrate it, fill it with `size` of generated data; return its env."""
    pg.create_database(dbname)
    env = service_env(pg, redis, dbname)
    for args in (("migrate", "--noinput"), ("generate_data", "--size", size, "--seed", "1")):
        done = manage(env, *args)
        assert done.returncode == 0, f"manage.py {' '.join(args)} failed:\n{done.stderr}"
    return env


@pytest.fixture(scope="session")
def workload_env(postgres: LocalPostgres, redis_server: LocalRedis) -> dict[str, str]:
    """Env of a migrated database `finch_api` holding ~3 MB of generated data."""
    return prepare_database(postgres, redis_server, "finch_api", "3MB")


@pytest.fixture
def start_backend(private_dir: Path) -> Iterator[Callable[..., Backend]]:
    """Start gunicorn with the given env (+ overrides); every one started is stopped."""
    started: list[Backend] = []

    def start(env: dict[str, str], workers: int = 2, **overrides: str) -> Backend:
        backend = Backend(env | overrides, private_dir, workers)
        started.append(backend)
        return backend.start()

    try:
        yield start
    finally:
        for backend in started:
            backend.stop()


@pytest.fixture
def start_worker(private_dir: Path) -> Iterator[Callable[..., Worker]]:
    """Start a Celery worker (and beat if asked); every one started is stopped."""
    started: list[Worker] = []

    def start(env: dict[str, str], beat: bool = False, **overrides: str) -> Worker:
        worker = Worker(env | overrides, private_dir, beat=beat)
        started.append(worker)
        return worker.start()

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()
