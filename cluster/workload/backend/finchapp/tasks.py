"""Celery tasks (real database writes + CPU) and the signal handlers that count outcomes."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from typing import Any

from celery import Task, shared_task
from celery.signals import task_failure, task_retry, task_success
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db.models import Count, F, Sum
from django.utils import timezone

from finchapp import cpu
from finchapp.metrics import TASKS
from finchapp.models import Budget, DailyReport, TaskRecord, Transaction

DEFAULT_LIMIT_CENTS = 50_000  # chosen: a new budget starts at 500.00 per category and month
# Database outages are retried (with backoff), so a PostgreSQL restart loses no task.
RETRY: dict[str, Any] = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "max_retries": 20,
}


def _finish(task_id: str | None, name: str, origin: str) -> None:
    """Mark the ledger row done (create it for tasks nobody recorded at enqueue, e.g. beat)."""
    now = timezone.now()
    key = uuid.UUID(task_id) if task_id else uuid.uuid4()
    updated = TaskRecord.objects.filter(pk=key).update(
        state=TaskRecord.DONE, finished_at=now, executions=F("executions") + 1
    )
    if not updated:
        TaskRecord.objects.create(
            id=key,
            name=name,
            origin=origin,
            state=TaskRecord.DONE,
            enqueued_at=now,
            finished_at=now,
            executions=1,
        )


@shared_task(name="finch.recompute_budget", bind=True, **RETRY)
def recompute_budget(self: Task, account_id: int, category_id: int, day: str) -> int:
    """Recompute one account's spending in one category for the month of `day`."""
    month = dt.date.fromisoformat(day).replace(day=1)
    start = dt.datetime(month.year, month.month, 1, tzinfo=dt.UTC)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    cpu.burn(settings.FINCH_ENV.profile.task_cpu_ms, f"{account_id}:{category_id}".encode())
    with transaction.atomic():
        spent = (
            Transaction.objects.filter(
                account_id=account_id,
                category_id=category_id,
                booked_at__gte=start,
                booked_at__lt=end,
            ).aggregate(s=Sum("amount_cents"))["s"]
            or 0
        )
        Budget.objects.update_or_create(
            account_id=account_id,
            category_id=category_id,
            month=month,
            defaults={"spent_cents": -spent, "updated_at": timezone.now()},
            create_defaults={
                "spent_cents": -spent,
                "updated_at": timezone.now(),
                "limit_cents": DEFAULT_LIMIT_CENTS,
            },
        )
        _finish(self.request.id, self.name, "api")
    return int(spent)


@shared_task(name="finch.rollup_daily", bind=True, **RETRY)
def rollup_daily(self: Task) -> int:
    """Periodic (beat): today's transaction count and total into DailyReport."""
    now = timezone.now()
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    totals = Transaction.objects.filter(
        booked_at__gte=start, booked_at__lt=start + dt.timedelta(days=1)
    ).aggregate(n=Count("id"), s=Sum("amount_cents"))
    cpu.burn(settings.FINCH_ENV.profile.task_cpu_ms, b"rollup")
    with transaction.atomic():
        DailyReport.objects.update_or_create(
            day=start.date(),
            defaults={
                "transaction_count": totals["n"],
                "total_cents": totals["s"] or 0,
                "computed_at": now,
            },
        )
        _finish(self.request.id, self.name, "beat")
    return int(totals["n"])


@task_success.connect
def _count_success(sender: Task | None = None, **_: Any) -> None:
    TASKS.labels(task=getattr(sender, "name", "unknown"), state="succeeded").inc()


@task_retry.connect
def _count_retry(sender: Task | None = None, **_: Any) -> None:
    TASKS.labels(task=getattr(sender, "name", "unknown"), state="retried").inc()


@task_failure.connect
def _count_failure(sender: Task | None = None, task_id: str | None = None, **_: Any) -> None:
    TASKS.labels(task=getattr(sender, "name", "unknown"), state="failed").inc()
    # If the database is why it failed, the row stays pending, which still counts as not done.
    with contextlib.suppress(DatabaseError):
        if task_id:
            TaskRecord.objects.filter(pk=uuid.UUID(task_id)).update(
                state=TaskRecord.FAILED, finished_at=timezone.now()
            )
