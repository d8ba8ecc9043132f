"""`manage.py generate_data --size 50MB --seed 42`: fill the database with synthetic data."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from finchapp import datagen


class Command(BaseCommand):
    help = "Replace all Finch rows with deterministic synthetic data of about --size on disk."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--size", required=True, help="target on-disk size, e.g. 50MB, 2GB")
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            size = datagen.parse_size(options["size"])
        except datagen.SizeError as exc:
            raise CommandError(f"--size: {exc}") from None
        verbose = options["verbosity"] > 1

        def progress(done: int, total: int) -> None:
            if verbose:
                self.stderr.write(f"  {done}/{total} transactions")

        with transaction.atomic():
            connection.ensure_connection()
            with connection.connection.cursor() as cursor:
                stats = datagen.generate(cursor, size, options["seed"], progress)
        with connection.connection.cursor() as cursor:
            # Statistics for the planner and the visibility map, as a restored database has.
            cursor.execute("VACUUM (ANALYZE) finch_transaction, finch_account, finch_budget")
            actual = datagen.total_size(cursor)
        if verbose:
            self.stderr.write(
                "  phases: "
                + ", ".join(f"{name} {sec:.1f}s" for name, sec in stats["phases"].items())
            )
        mib = actual / 2**20
        self.stdout.write(
            f"generated {stats['transactions']} transactions, {stats['accounts']} accounts, "
            f"{stats['budgets']} budgets: {mib:.1f} MB on disk (target {size / 2**20:.1f} MB) "
            f"in {stats['seconds']:.1f} s ({size / 2**20 / stats['seconds']:.1f} MB/s load), "
            f"seed {options['seed']}"
        )
