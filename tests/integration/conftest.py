"""Session-wide real services for integration tests: PostgreSQL 15 and Redis on free ports.

Started with the local platform's launchers in a private directory under /tmp (the postgres OS
user must be able to reach it, which pytest's 0700 tmp root does not allow) and always
stopped, with the directory removed, at the end of the session.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from finchsim.platform.local import LocalPostgres, LocalRedis


@pytest.fixture(scope="session")
def services_dir() -> Iterator[Path]:
    """A directory for service data, traversable by the postgres OS user."""
    path = Path(tempfile.mkdtemp(prefix="finchsim-it-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(services_dir: Path) -> Iterator[LocalPostgres]:
    """A running PostgreSQL with database/user `finch` (password auth, 127.0.0.1 only)."""
    server = LocalPostgres(services_dir / "postgres", password=secrets.token_hex(12))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(services_dir: Path) -> Iterator[LocalRedis]:
    """A running Redis with the seed's settings: password, allkeys-lru, AOF on."""
    server = LocalRedis(
        services_dir / "redis",
        password=secrets.token_hex(12),
        maxmemory_policy="allkeys-lru",
        appendonly=True,
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A per-test directory under /tmp that service users can traverse; removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="finchsim-t-"))
    os.chmod(path, 0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
