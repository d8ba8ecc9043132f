"""The Finch domain, kept small: accounts, categories, transactions, budgets, reports, and the
ledger of background tasks that lets a drill prove no task was lost."""

from __future__ import annotations

from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=60, unique=True)
    kind = models.CharField(max_length=10)  # "expense" or "income"


class Account(models.Model):
    owner = models.CharField(max_length=80)
    name = models.CharField(max_length=80)
    currency = models.CharField(max_length=3, default="EUR")
    opened_at = models.DateTimeField()
    balance_cents = models.BigIntegerField(default=0)


class Transaction(models.Model):
    # FK indexes off: the composite indexes below serve every query and cost less to maintain.
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="transactions", db_index=False
    )
    category = models.ForeignKey(Category, on_delete=models.PROTECT, db_index=False)
    amount_cents = models.BigIntegerField()
    booked_at = models.DateTimeField()
    description = models.CharField(max_length=120)

    class Meta:
        indexes = [  # noqa: RUF012 - Django reads Meta as plain class attributes
            models.Index(fields=["account", "-booked_at"], name="tx_account_booked"),
            models.Index(fields=["category", "booked_at"], name="tx_category_booked"),
            models.Index(fields=["-booked_at"], name="tx_booked"),
        ]


class Budget(models.Model):
    """Per account, category and month; `spent_cents` is recomputed by a Celery task."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, db_index=False)
    category = models.ForeignKey(Category, on_delete=models.CASCADE, db_index=False)
    month = models.DateField()
    limit_cents = models.BigIntegerField()
    spent_cents = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [  # noqa: RUF012 - Django reads Meta as plain class attributes
            models.UniqueConstraint(
                fields=["account", "category", "month"], name="budget_account_category_month"
            )
        ]


class DailyReport(models.Model):
    """Written by the periodic (beat) task."""

    day = models.DateField(unique=True)
    transaction_count = models.IntegerField()
    total_cents = models.BigIntegerField()
    computed_at = models.DateTimeField()


class TaskRecord(models.Model):
    """One row per background task: inserted as `pending` in the same database transaction as
    the write that enqueues it (or by the worker, for beat tasks), marked `done` by the worker.
    `executions` > 1 shows an at-least-once redelivery."""

    PENDING, DONE, FAILED = "pending", "done", "failed"

    id = models.UUIDField(primary_key=True)
    name = models.CharField(max_length=60)
    origin = models.CharField(max_length=10)  # "api" or "beat"
    state = models.CharField(max_length=10, db_index=True)
    enqueued_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True)
    executions = models.IntegerField(default=0)
