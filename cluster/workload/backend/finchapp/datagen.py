"""Synthetic production-like data, bulk-loaded with COPY, deterministic from (size, seed).

The same seed and size always give the same rows (ids included): one random.Random stream is
consumed in a fixed order, and times are offsets from a fixed epoch, not from "now". Size is
the on-disk total (tables + indexes + TOAST) of the Finch tables, in binary units
(1 MB = 2**20 bytes, as pg_size_pretty reports).
"""

from __future__ import annotations

import datetime as dt
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg.copy import QueuedLibpqWriter

from finchapp.vocabulary import CATEGORIES, FIRST, LAST, MERCHANTS

EPOCH = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
SPAN_DAYS = 730
TX_PER_ACCOUNT = 200
BUDGETS_PER_ACCOUNT = 6
CHUNK_ROWS = 50_000
# On-disk bytes per transaction row, heap + its three indexes, measured on PostgreSQL 15 with
# this generator (see README); accounts and budgets add ~3 % on top.
BYTES_PER_TRANSACTION = 196
TABLES = (
    "finch_transaction",
    "finch_budget",
    "finch_account",
    "finch_category",
    "finch_dailyreport",
    "finch_taskrecord",
)
UNITS = {"KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40, "B": 1}


class SizeError(ValueError):
    """A --size value that is not a positive number with a unit."""


def parse_size(text: str) -> int:
    """'50MB' -> bytes (binary units: KB, MB, GB, TB; B or no unit for bytes)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?B)?\s*", text.upper())
    if not match or float(match.group(1)) <= 0:
        raise SizeError(
            f"expected a size like 50MB or 2GB (units {', '.join(UNITS)}), got {text!r}"
        )
    return int(float(match.group(1)) * UNITS[match.group(2) or "B"])


@dataclass(frozen=True)
class Plan:
    """How many rows of each table a target size needs."""

    accounts: int
    transactions: int

    @classmethod
    def for_size(cls, size_bytes: int) -> Plan:
        transactions = max(1, int(size_bytes / BYTES_PER_TRANSACTION / 1.03))
        return cls(accounts=max(1, transactions // TX_PER_ACCOUNT), transactions=transactions)


TIMES = [f" {h:02d}:{m:02d}:{s:02d}+00" for h in range(24) for m in range(60) for s in range(60)]


def _ts(seconds: int, days: list[str]) -> str:
    day, second = divmod(seconds, 86400)
    return days[day] + TIMES[second]


def _accounts(rng: random.Random, plan: Plan, days: list[str]) -> str:
    lines = []
    for i in range(1, plan.accounts + 1):
        owner = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        name = rng.choice(("Checking", "Savings", "Credit card", "Joint", "Travel"))
        currency = rng.choice(("EUR", "EUR", "EUR", "USD", "GBP"))
        opened = _ts(rng.randrange(86400 * 60), days)
        lines.append(f"{i}\t{owner}\t{name}\t{currency}\t{opened}\t0\n")
    return "".join(lines)


def _transactions(
    rng: random.Random, plan: Plan, first_id: int, count: int, days: list[str]
) -> str:
    """Rows first_id .. first_id+count-1; booked_at grows with id, as appends over time do.

    One 96-bit draw per row is sliced into every field: generation, not COPY, bounds the speed.
    """
    step = SPAN_DAYS * 86400 / plan.transactions
    n_cat, n_merch, n_acc = len(CATEGORIES), len(MERCHANTS), plan.accounts
    bits, merchants = rng.getrandbits, MERCHANTS
    lines = []
    for i in range(first_id, first_id + count):
        r = bits(96)
        category = (r & 0xFFFF) % n_cat
        u = ((r >> 64) & 0xFFFFFFFF) / 4294967296.0
        # Income (3 first categories) is rare and large; spending is skewed to small amounts.
        amount = int(1_000 + 399_000 * u) if category < 3 else -int(100 + 20_000 * u**3)
        day, second = divmod(int(i * step), 86400)
        lines.append(
            f"{i}\t{((r >> 16) & 0xFFFFFF) % n_acc + 1}\t{category + 1}\t{amount}\t"
            f"{days[day]}{TIMES[second]}\t{merchants[((r >> 40) & 0xFF) % n_merch]} "
            f"#{(r >> 48) & 0xFFFF:05d}\n"
        )
    return "".join(lines)


def _budgets(rng: random.Random, plan: Plan) -> str:
    lines, budget_id = [], 0
    for account in range(1, plan.accounts + 1):
        for category in rng.sample(range(4, len(CATEGORIES) + 1), BUDGETS_PER_ACCOUNT):
            month = EPOCH.date().replace(month=1 + rng.randrange(12))
            budget_id += 1
            limit = rng.randrange(50, 1000) * 100
            lines.append(f"{budget_id}\t{account}\t{category}\t{month}\t{limit}\t0\t\\N\n")
    return "".join(lines)


def generate(
    cursor: Any, size_bytes: int, seed: int, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Replace the Finch tables' rows with generated ones; return counts, size and speed.

    `cursor` is a psycopg 3 cursor inside an open transaction. Secondary indexes are dropped
    for the load and rebuilt after (much faster than maintaining them row by row)."""
    started = time.perf_counter()
    plan = Plan.for_size(size_bytes)
    rng = random.Random(seed)
    days = [(EPOCH + dt.timedelta(days=d)).date().isoformat() for d in range(SPAN_DAYS + 61)]
    cursor.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY")
    # Index builds sort in memory instead of on disk; 256MB fits the seed's 1Gi PostgreSQL pod.
    cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
    # Foreign keys (deferred: they would queue one trigger event per row) and secondary
    # indexes come off for the load and go back after, each rebuilt in one pass.
    cursor.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text = "
        "ANY(%s)",
        (list(TABLES),),
    )
    foreign_keys = cursor.fetchall()
    for table, name, _ in foreign_keys:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    cursor.execute(
        "SELECT indexdef, indexname FROM pg_indexes WHERE tablename = "
        "'finch_transaction' AND indexname NOT LIKE '%%_pkey'"
    )
    indexes = cursor.fetchall()
    for _, name in indexes:
        cursor.execute(f'DROP INDEX "{name}"')

    def copy(table: str, columns: str, data: str) -> None:
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as out:
            out.write(data)

    phases: dict[str, float] = {"prepare": time.perf_counter() - started}
    mark = time.perf_counter()
    copy(
        "finch_category",
        "id, name, kind",
        "".join(f"{i}\t{n}\t{k}\n" for i, (n, k) in enumerate(CATEGORIES, 1)),
    )
    copy(
        "finch_account",
        "id, owner, name, currency, opened_at, balance_cents",
        _accounts(rng, plan, days),
    )
    done = 0
    # A queued writer sends from a thread, so PostgreSQL parses one chunk while Python makes
    # the next (the server and this process then use both cores).
    with cursor.copy(
        "COPY finch_transaction (id, account_id, category_id, amount_cents, "
        "booked_at, description) FROM STDIN",
        writer=QueuedLibpqWriter(cursor),
    ) as out:
        while done < plan.transactions:
            count = min(CHUNK_ROWS, plan.transactions - done)
            out.write(_transactions(rng, plan, done + 1, count, days))
            done += count
            if progress:
                progress(done, plan.transactions)
    phases["copy"] = time.perf_counter() - mark
    mark = time.perf_counter()
    copy(
        "finch_budget",
        "id, account_id, category_id, month, limit_cents, spent_cents, updated_at",
        _budgets(rng, plan),
    )
    for definition, _ in indexes:
        cursor.execute(definition)
    for table, name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    phases["index"] = time.perf_counter() - mark
    mark = time.perf_counter()
    cursor.execute(
        "UPDATE finch_account a SET balance_cents = s.total FROM (SELECT account_id, "
        "sum(amount_cents) AS total FROM finch_transaction GROUP BY account_id) s "
        "WHERE a.id = s.account_id"
    )
    for table in ("finch_category", "finch_account", "finch_transaction", "finch_budget"):
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT coalesce(max(id), 1) FROM {table}))"
        )
    phases["finish"] = time.perf_counter() - mark
    elapsed = time.perf_counter() - started
    return {
        "accounts": plan.accounts,
        "transactions": plan.transactions,
        "budgets": plan.accounts * BUDGETS_PER_ACCOUNT,
        "seconds": elapsed,
        "phases": phases,
    }


def total_size(cursor: Any) -> int:
    """On-disk bytes of the Finch tables, indexes and TOAST included."""
    cursor.execute(
        "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c "
        "WHERE c.relname = ANY(%s)",
        (list(TABLES),),
    )
    return int(cursor.fetchone()[0] or 0)
