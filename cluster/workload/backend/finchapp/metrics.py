"""Application metrics and the registry a scrape reads.

gunicorn and the Celery prefork pool run several processes, so counters go through
prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR) and a scrape aggregates every
process's files. Values computed at scrape time (queue length, task ledger) are custom
collectors added to that scrape registry.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import redis
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from finchapp.env import read_env

log = logging.getLogger(__name__)
QUEUES = ("celery",)  # the only queue the app uses: Celery's default

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests served", ["method", "view", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency, from the outermost middleware",
    ["method", "view"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CACHE_READS = Counter(
    "finch_summary_cache_total", "Account summary reads by cache result", ["result"]
)
TASKS = Counter("finch_celery_tasks_total", "Celery task outcomes in the worker", ["task", "state"])
TASKS_ENQUEUED = Counter(
    "finch_celery_tasks_enqueued_total", "Celery tasks published by the web tier", ["task"]
)


class QueueLengthCollector(Collector):
    """finch_celery_queue_length{queue}: LLEN of each broker list, read at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        env = read_env()
        gauge = GaugeMetricFamily(
            "finch_celery_queue_length", "Messages waiting in the Redis broker", labels=["queue"]
        )
        client = env.redis_client(env.redis_broker_db)
        try:
            for queue in QUEUES:
                gauge.add_metric([queue], float(client.llen(queue)))  # type: ignore[arg-type]
        except redis.RedisError as exc:
            # No sample rather than a wrong 0: absent() alerts can see the broker is gone.
            log.warning("queue length not scraped: %s", exc)
        finally:
            client.close()
        yield gauge


class TaskLedgerCollector(Collector):
    """finch_task_records{state}: rows of the TaskRecord ledger by state (web tier only)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db import DatabaseError
        from django.db.models import Count

        from finchapp.models import TaskRecord

        gauge = GaugeMetricFamily(
            "finch_task_records", "Background tasks recorded, by state", labels=["state"]
        )
        try:
            counts = dict(
                TaskRecord.objects.values_list("state").annotate(n=Count("id")).order_by()
            )
            for state in (TaskRecord.PENDING, TaskRecord.DONE, TaskRecord.FAILED):
                gauge.add_metric([state], float(counts.get(state, 0)))
        except DatabaseError as exc:
            log.warning("task ledger not scraped: %s", exc)
        yield gauge


class _DefaultRegistry(Collector):
    """Single-process mode: everything in the default registry (process_*, python_*, app)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def scrape_registry(*, web: bool) -> CollectorRegistry:
    """The registry one scrape reads: every process's metrics plus the scrape-time gauges.

    In multiprocess mode the process_* metrics describe the process answering the scrape
    (prometheus-client cannot aggregate them); pod totals come from cAdvisor/psutil."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        ProcessCollector(registry=registry)
    else:
        registry = CollectorRegistry()
        registry.register(_DefaultRegistry())
    registry.register(QueueLengthCollector())
    if web:
        registry.register(TaskLedgerCollector())
    return registry
