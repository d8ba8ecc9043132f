"""Each API endpoint against real gunicorn + PostgreSQL + Redis: status codes, cost scaling
with the profile, cache behaviour, and the metrics the seed's alerts depend on."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from tests.integration.workload.helpers import Backend

pytestmark = pytest.mark.integration
Start = Callable[..., Backend]


@pytest.mark.parametrize("profile, payload_kb, rows", [("light", 2, 20), ("heavy", 64, 200)])
def test_costs_scale_with_the_profile(
    start_backend: Start, workload_env: dict[str, str], profile: str, payload_kb: int, rows: int
) -> None:
    api = start_backend(workload_env, FINCH_COST_PROFILE=profile)
    meta = api.get("/api/meta").json()
    assert meta["profile"]["name"] == profile
    summary = api.get(f"/api/accounts/{meta['account_ids'][0]}/summary")
    assert summary.status == 200
    assert abs(len(summary.body) - payload_kb * 1024) <= 0.1 * payload_kb * 1024, len(summary.body)
    page = api.get("/api/transactions?page=1").json()
    assert page["page_size"] == rows and len(page["results"]) == rows and page["has_next"]
    ids = [r["id"] for r in page["results"]]
    second = api.get("/api/transactions?page=2").json()
    assert not set(ids) & {r["id"] for r in second["results"]}


def test_cpu_endpoint_burns_the_configured_cpu(
    start_backend: Start, workload_env: dict[str, str]
) -> None:
    api = start_backend(workload_env, FINCH_CPU_MS="50")
    body = api.get("/api/compute").json()
    assert 50 <= body["cpu_ms"] < 80, body


def test_cached_read_hits_redis_when_allowed(
    start_backend: Start, workload_env: dict[str, str]
) -> None:
    always = start_backend(workload_env, FINCH_CACHE_HIT_RATIO="1")
    first = always.get("/api/accounts/2/summary")
    second = always.get("/api/accounts/2/summary")
    assert first.status == second.status == 200
    assert second.headers["X-Cache"] == "HIT" and second.body == first.body
    never = start_backend(workload_env, FINCH_CACHE_HIT_RATIO="0")
    assert {never.get("/api/accounts/2/summary").headers["X-Cache"] for _ in range(5)} == {"MISS"}


def test_filters_errors_and_write(start_backend: Start, workload_env: dict[str, str]) -> None:
    api = start_backend(workload_env, FINCH_LIST_ROWS="10")
    rows = api.get("/api/transactions?account=3&min_amount=0").json()["results"]
    assert rows and all(r["account"] == 3 and r["amount_cents"] >= 0 for r in rows)
    assert api.get("/api/transactions?page=0").status == 400
    assert api.get("/api/transactions?account=x").status == 400
    assert api.get("/api/accounts/999999999/summary").status == 404
    assert api.get("/no/such/path").status == 404
    assert api.post("/api/transactions", {"account": 1}).status == 400
    assert (
        api.post("/api/transactions", {"account": 1, "category": 999, "amount_cents": 1}).status
        == 400
    )
    before = api.get("/api/tasks/stats").json()
    created = api.post(
        "/api/transactions",
        {"account": 1, "category": 4, "amount_cents": -1234, "description": "t"},
    )
    assert created.status == 201, created.body
    after = api.get("/api/tasks/stats").json()
    # No worker runs here: the task is recorded pending (and waits in the broker).
    assert after["total"] == before["total"] + 1 and after["pending"] == before["pending"] + 1
    assert api.get("/healthz/live").json() == {"status": "alive"}
    assert api.get("/healthz/ready").status == 200


def test_metrics_aggregate_workers_with_the_alert_labels(
    start_backend: Start, workload_env: dict[str, str]
) -> None:
    api = start_backend(workload_env, workers=2)
    for _ in range(20):  # enough for both workers to serve some (sync workers, new connections)
        api.get("/api/compute")
    api.get("/no/such/path")
    text = api.get("/metrics").body.decode()
    counts = re.findall(
        r'^http_requests_total\{method="GET",status="200",view="compute"\} (\S+)$', text, re.M
    )
    assert counts and float(counts[0]) == 20.0, counts  # summed over both workers' files
    assert 'http_requests_total{method="GET",status="404",view="unmatched"}' in text
    assert re.search(
        r'^http_request_duration_seconds_bucket\{le="0.05",method="GET",'
        r'view="compute"\} ',
        text,
        re.M,
    )
    assert re.search(r'^finch_celery_queue_length\{queue="celery"\} \d', text, re.M)
    assert re.search(r'^finch_task_records\{state="pending"\} \d', text, re.M)
    assert "django_http_requests_latency_seconds_by_view_method" in text  # django-prometheus
    assert re.search(r"^process_resident_memory_bytes \d", text, re.M)
