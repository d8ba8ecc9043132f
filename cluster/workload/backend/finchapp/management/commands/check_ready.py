"""`manage.py check_ready [--wait 60]`: exit 0 once PostgreSQL and Redis answer, else one
clear error (exit 3). For init containers and start scripts; the migrate command then follows."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from finchapp.env import fail
from finchapp.health import check_dependencies


def _problems() -> list[str]:
    env = settings.FINCH_ENV
    db, cache = check_dependencies()
    found = []
    if db is not None:
        first = str(db).strip().splitlines()[0] if str(db).strip() else repr(db)
        found.append(
            f"cannot reach PostgreSQL at {env.pg_host}:{env.pg_port} (database "
            f"{env.pg_db}, user {env.pg_user}; POSTGRES_HOST/POSTGRES_PORT): {first}"
        )
    if cache is not None:
        found.append(
            f"cannot reach Redis at {env.redis_host}:{env.redis_port} "
            f"(REDIS_HOST/REDIS_PORT/REDIS_PASSWORD): {cache}"
        )
    return found


class Command(BaseCommand):
    help = "Wait until PostgreSQL and Redis answer; exit 3 with one message if they do not."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--wait",
            type=float,
            default=0.0,
            help="seconds to keep retrying (default 0: one attempt)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        deadline = time.monotonic() + options["wait"]
        while True:
            problems = _problems()
            if not problems:
                self.stdout.write("ready: PostgreSQL and Redis answer")
                return
            if time.monotonic() >= deadline:
                fail("not ready: " + "; ".join(problems), code=3)
            time.sleep(1.0)
