#!/usr/bin/env python
"""Django's command-line utility, with start-up failures reported in one line, no traceback."""

import os
import sys


def main() -> None:
    """Run a management command; an unreachable PostgreSQL/Redis is one clear error (exit 3)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finchapp.settings")
    from django.core.management import execute_from_command_line
    from django.db.utils import OperationalError
    from finchapp.env import fail
    from redis.exceptions import ConnectionError as RedisConnectionError

    try:
        execute_from_command_line(sys.argv)
    except OperationalError as exc:
        from django.conf import settings

        db = settings.DATABASES["default"]
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fail(
            f"cannot reach PostgreSQL at {db['HOST']}:{db['PORT']} (database {db['NAME']}, "
            f"user {db['USER']}; POSTGRES_HOST/POSTGRES_PORT): {reason}",
            code=3,
        )
    except RedisConnectionError as exc:
        fail(f"cannot reach Redis (REDIS_HOST/REDIS_PORT): {exc}", code=3)


if __name__ == "__main__":
    main()
