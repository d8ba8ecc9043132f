"""`manage.py migrate`, one process at a time per database (a PostgreSQL advisory lock).

The seed runs migrations in every backend replica's init container ("Database Migrations:
Automated via init containers"), so a fresh start has three of them meet on an empty database:
they create the same tables at once, all but one fail (`duplicate key value violates unique
constraint "pg_type_typname_nsp_index"`), and the kubelet restarts those after its crash-loop
back-off. Here each migrate holds a session-level advisory lock while it plans and applies; the
others wait for it, then find nothing left to apply. PostgreSQL releases the lock when the
session ends, so a migrate that dies cannot leave it held."""

from __future__ import annotations

from typing import Any

from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections

# Any 64-bit key the application uses for nothing else: "finchmig".
LOCK_KEY = int.from_bytes(b"finchmig", "big")


class Command(DjangoMigrate):
    help = DjangoMigrate.help + " Serialised across processes by a PostgreSQL advisory lock."

    def handle(self, *args: Any, **options: Any) -> None:
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            super().handle(*args, **options)
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
            if not cursor.fetchone()[0]:
                self.stdout.write("another migrate holds the migration lock; waiting for it")
                cursor.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
        try:
            super().handle(*args, **options)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
