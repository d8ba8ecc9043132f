"""Typed reading of the workload's environment variables, every problem reported at once.

Names follow what a Kubernetes ConfigMap/Secret provides (POSTGRES_*, REDIS_*, DJANGO_*,
CELERY_*, FINCH_*); cluster/workload/README.md lists them with their defaults.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import NoReturn

import redis

from finchapp.profiles import ConfigError, CostProfile, load_profile


class EnvReader:
    """Reads typed values from a mapping, collecting problems instead of raising."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str, default: str | None = None) -> str:
        value = self.env.get(name)
        if value is None or value == "":
            if default is None:
                self.problems.append(f"{name}: required, not set")
                return ""
            return default
        return value

    def integer(self, name: str, default: int, low: int = 0, high: int = 2**31) -> int:
        raw = self.env.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            self.problems.append(f"{name}: expected an integer in [{low}, {high}], got {raw!r}")
            return default
        return value

    def number(self, name: str, default: float, low: float = 0.0) -> float:
        raw = self.env.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = float(raw)
        except ValueError:
            value = low - 1
        if not value >= low:
            self.problems.append(f"{name}: expected a number >= {low}, got {raw!r}")
            return default
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.env.get(name)
        if raw is None or raw == "":
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name}: expected true/false (1/0), got {raw!r}")
        return default

    def items(self, name: str, default: str) -> list[str]:
        return [item.strip() for item in self.text(name, default).split(",") if item.strip()]


@dataclass(frozen=True)
class Env:
    """Everything the workload reads from its environment."""

    secret_key: str
    debug: bool
    allowed_hosts: list[str]
    cors_origins: list[str]
    pg_host: str
    pg_port: int
    pg_db: str
    pg_user: str
    pg_password: str
    pg_connect_timeout: int
    conn_max_age: int
    redis_host: str
    redis_port: int
    redis_password: str
    redis_cache_db: int
    redis_broker_db: int
    health_timeout: float
    celery_concurrency: int
    visibility_timeout: int
    beat_interval: float
    beat_schedule_dir: str
    worker_metrics_addr: str
    worker_metrics_port: int
    profile: CostProfile

    def redis_client(self, db: int) -> redis.Redis:
        """A short-timeout client for one Redis database (health checks, queue gauges)."""
        return redis.Redis(
            host=self.redis_host,
            port=self.redis_port,
            db=db,
            password=self.redis_password or None,
            socket_timeout=self.health_timeout,
            socket_connect_timeout=self.health_timeout,
        )


def read_env(env: Mapping[str, str] | None = None) -> Env:
    """Parse the environment; raise ConfigError listing every invalid variable."""
    env = os.environ if env is None else env
    r = EnvReader(env)
    problems: list[str] = []
    try:
        profile = load_profile(env)
    except ConfigError as exc:
        problems.extend(exc.problems)
        profile = CostProfile("invalid", 0, 1, 0, 0.0, 0)
    result = Env(
        secret_key=r.text("DJANGO_SECRET_KEY"),
        debug=r.flag("DJANGO_DEBUG", False),
        allowed_hosts=r.items("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1"),
        cors_origins=r.items("DJANGO_CORS_ALLOWED_ORIGINS", ""),
        pg_host=r.text("POSTGRES_HOST", "localhost"),
        pg_port=r.integer("POSTGRES_PORT", 5432, 1, 65535),
        pg_db=r.text("POSTGRES_DB", "finch"),
        pg_user=r.text("POSTGRES_USER", "finch"),
        pg_password=r.text("POSTGRES_PASSWORD", ""),
        pg_connect_timeout=r.integer("POSTGRES_CONNECT_TIMEOUT", 5, 1, 600),
        conn_max_age=r.integer("DJANGO_CONN_MAX_AGE", 60, 0, 86400),
        redis_host=r.text("REDIS_HOST", "localhost"),
        redis_port=r.integer("REDIS_PORT", 6379, 1, 65535),
        redis_password=r.text("REDIS_PASSWORD", ""),
        redis_cache_db=r.integer("REDIS_CACHE_DB", 1, 0, 15),
        redis_broker_db=r.integer("REDIS_BROKER_DB", 0, 0, 15),
        health_timeout=r.number("FINCH_HEALTH_TIMEOUT_SECONDS", 2.0, 0.1),
        celery_concurrency=r.integer("CELERY_CONCURRENCY", 4, 1, 256),
        visibility_timeout=r.integer("CELERY_VISIBILITY_TIMEOUT", 300, 1, 86400 * 7),
        beat_interval=r.number("FINCH_BEAT_INTERVAL_SECONDS", 60.0, 0.1),
        beat_schedule_dir=r.text("CELERY_BEAT_SCHEDULE_DIR", "/tmp"),
        worker_metrics_addr=r.text("FINCH_WORKER_METRICS_ADDR", "127.0.0.1"),
        worker_metrics_port=r.integer("FINCH_WORKER_METRICS_PORT", 9808, 0, 65535),
        profile=profile,
    )
    problems = r.problems + problems
    if problems:
        raise ConfigError(problems)
    return result


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one clear error (no traceback) and exit: used by every entry point at start."""
    print(f"finch: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


@contextlib.contextmanager
def exit_on_config_error() -> Iterator[None]:
    """Turn a ConfigError raised inside into `fail(...)` with every problem listed."""
    try:
        yield
    except ConfigError as exc:
        fail("invalid configuration:\n  " + "\n  ".join(exc.problems))
