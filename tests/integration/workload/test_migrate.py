"""Migrations from several init containers at once: the seed runs `migrate` in each backend
replica's init container, so three of them meet on an empty database at every fresh start."""

from __future__ import annotations

import subprocess
import sys

import pytest

from finchsim.platform.local import LocalPostgres, LocalRedis
from tests.integration.workload.conftest import service_env
from tests.integration.workload.helpers import BACKEND, manage

pytestmark = pytest.mark.integration
REPLICAS = 3


def test_concurrent_migrations_on_an_empty_database_all_succeed(
    postgres: LocalPostgres, redis_server: LocalRedis
) -> None:
    postgres.create_database("finch_migrate_race")
    env = service_env(postgres, redis_server, "finch_migrate_race")
    runs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "migrate", "--noinput"],
            cwd=BACKEND,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(REPLICAS)
    ]
    outputs = [run.communicate(timeout=300)[0] for run in runs]  # closes each pipe too
    results = list(zip([run.returncode for run in runs], outputs, strict=True))
    assert [code for code, _ in results] == [0] * REPLICAS, "\n---\n".join(o for _, o in results)
    # Every migration applied exactly once, and nothing left to apply.
    check = manage(env, "migrate", "--check", "--noinput")
    assert check.returncode == 0, check.stdout + check.stderr
