"""The API: endpoints with different cost profiles (cache, query, write+task, CPU)."""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, F, Max, Min, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from finchapp import cpu
from finchapp.metrics import CACHE_READS, TASKS_ENQUEUED
from finchapp.models import Account, Category, TaskRecord, Transaction
from finchapp.tasks import recompute_budget

SUMMARY_TTL = 300  # seconds; chosen: long enough that the hit ratio, not expiry, decides


def _bad(message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=400)


@require_GET
def meta(request: HttpRequest) -> JsonResponse:
    """The active cost profile and the id range of accounts (for load generators)."""
    ids = Account.objects.aggregate(low=Min("id"), high=Max("id"), n=Count("id"))
    return JsonResponse(
        {
            "profile": dataclasses.asdict(settings.FINCH_ENV.profile),
            "accounts": ids["n"],
            "account_ids": [ids["low"], ids["high"]],
            "categories": Category.objects.count(),
        }
    )


def _summary(pk: int, payload_kb: int) -> str | None:
    account = Account.objects.filter(pk=pk).first()
    if account is None:
        return None
    totals = Transaction.objects.filter(account=account).aggregate(
        n=Count("id"), s=Sum("amount_cents")
    )
    recent = Transaction.objects.filter(account=account).order_by("-booked_at")[:5]
    body: dict[str, Any] = {
        "id": account.pk,
        "owner": account.owner,
        "name": account.name,
        "currency": account.currency,
        "balance_cents": account.balance_cents,
        "transaction_count": totals["n"],
        "net_cents": totals["s"] or 0,
        "recent": [
            {"id": t.pk, "amount_cents": t.amount_cents, "booked_at": t.booked_at.isoformat()}
            for t in recent
        ],
    }
    # Pad to the profile's payload size with a chart series, as a dashboard summary would carry.
    missing = payload_kb * 1024 - len(json.dumps(body)) - len(', "sparkline": []')
    body["sparkline"] = [
        10000 + (pk * 7919 + i * 104729) % 90000 for i in range(max(0, missing) // 7)
    ]
    return json.dumps(body)


@require_GET
def account_summary(request: HttpRequest, pk: int) -> HttpResponse:
    """Cached read: a share `cache_hit_ratio` of reads may use Redis, the rest rebuild from
    PostgreSQL (and refresh the cache). X-Cache says which happened."""
    profile = settings.FINCH_ENV.profile
    key = f"summary:{pk}:{profile.payload_kb}"  # the payload size is part of the value's shape
    body = cache.get(key) if random.random() < profile.cache_hit_ratio else None
    result = "hit" if body is not None else "miss"
    if body is None:
        body = _summary(pk, profile.payload_kb)
        if body is None:
            return JsonResponse({"error": f"account {pk} not found"}, status=404)
        cache.set(key, body, SUMMARY_TTL)
    CACHE_READS.labels(result=result).inc()
    response = HttpResponse(body, content_type="application/json")
    response["X-Cache"] = result.upper()
    return response


def _int_param(request: HttpRequest, name: str, default: int | None, low: int) -> int | None:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    value = int(raw)  # ValueError -> 400 in the caller
    if value < low:
        raise ValueError(f"{name} must be >= {low}")
    return value


def _list(request: HttpRequest) -> JsonResponse:
    size = settings.FINCH_ENV.profile.list_rows
    try:
        page = _int_param(request, "page", 1, 1) or 1
        account = _int_param(request, "account", None, 1)
        category = _int_param(request, "category", None, 1)
        min_amount = _int_param(request, "min_amount", None, -(2**62))
    except ValueError as exc:
        return _bad(f"invalid query parameter: {exc}")
    rows = Transaction.objects.select_related("account", "category").order_by("-booked_at", "-id")
    if account is not None:
        rows = rows.filter(account_id=account)
    if category is not None:
        rows = rows.filter(category_id=category)
    if min_amount is not None:
        rows = rows.filter(amount_cents__gte=min_amount)
    chunk = list(rows[(page - 1) * size : page * size + 1])  # one extra row: is there a next page
    results = [
        {
            "id": t.pk,
            "account": t.account_id,
            "account_name": t.account.name,
            "owner": t.account.owner,
            "category": t.category.name,
            "amount_cents": t.amount_cents,
            "booked_at": t.booked_at.isoformat(),
            "description": t.description,
        }
        for t in chunk[:size]
    ]
    return JsonResponse(
        {"page": page, "page_size": size, "has_next": len(chunk) > size, "results": results}
    )


def _create(request: HttpRequest) -> JsonResponse:
    try:
        data = json.loads(request.body or b"{}")
        account, category = int(data["account"]), int(data["category"])
        amount = int(data["amount_cents"])
        description = str(data.get("description", ""))[:120]
    except (ValueError, KeyError, TypeError) as exc:
        return _bad(f"expected JSON {{account, category, amount_cents, description}}: {exc!r}")
    if not Account.objects.filter(pk=account).exists():
        return _bad(f"account {account} not found")
    if not Category.objects.filter(pk=category).exists():
        return _bad(f"category {category} not found")
    now = timezone.now()
    task_id = uuid.uuid4()
    with transaction.atomic():
        tx = Transaction.objects.create(
            account_id=account,
            category_id=category,
            amount_cents=amount,
            booked_at=now,
            description=description,
        )
        Account.objects.filter(pk=account).update(balance_cents=F("balance_cents") + amount)
        # Recorded in the same transaction as the write: a task that never runs stays pending.
        TaskRecord.objects.create(
            id=task_id,
            name=recompute_budget.name,
            origin="api",
            state=TaskRecord.PENDING,
            enqueued_at=now,
        )

        def publish() -> None:
            recompute_budget.apply_async(
                args=[account, category, now.date().isoformat()], task_id=str(task_id)
            )
            TASKS_ENQUEUED.labels(task=recompute_budget.name).inc()

        # After commit, so the worker always finds the rows it is asked to process.
        transaction.on_commit(publish)
    return JsonResponse({"id": tx.pk, "task_id": str(task_id)}, status=201)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def transactions(request: HttpRequest) -> JsonResponse:
    """GET: uncached page of transactions (join + filter); POST: create one + enqueue a task."""
    return _create(request) if request.method == "POST" else _list(request)


@require_GET
def compute(request: HttpRequest) -> JsonResponse:
    """CPU-heavy: burn the profile's `cpu_ms` of CPU in pure Python hashing."""
    used, digest = cpu.burn(settings.FINCH_ENV.profile.cpu_ms, request.get_full_path().encode())
    return JsonResponse({"cpu_ms": round(used, 2), "digest": digest})


@require_GET
def task_stats(request: HttpRequest) -> JsonResponse:
    """Counts of the task ledger: proves whether any enqueued task was lost or duplicated."""
    by_state = dict(TaskRecord.objects.values_list("state").annotate(n=Count("id")).order_by())
    per_name: dict[str, dict[str, int]] = {}
    for name, state, n in (
        TaskRecord.objects.values_list("name", "state").annotate(n=Count("id")).order_by()
    ):
        per_name.setdefault(name, {})[state] = n
    dup = TaskRecord.objects.filter(executions__gt=1).aggregate(d=Sum(F("executions") - 1))["d"]
    return JsonResponse(
        {
            "total": sum(by_state.values()),
            "pending": by_state.get(TaskRecord.PENDING, 0),
            "done": by_state.get(TaskRecord.DONE, 0),
            "failed": by_state.get(TaskRecord.FAILED, 0),
            "duplicate_executions": dup or 0,
            "by_name": per_name,
        }
    )
