"""Writes enqueue Celery tasks that a real worker executes, none lost; beat's periodic task
runs; task outcomes are countable through the API and the worker's metrics."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from finchsim.platform.local import LocalPostgres, LocalRedis
from tests.integration.workload.conftest import prepare_database
from tests.integration.workload.helpers import Backend, Worker, wait_for

pytestmark = pytest.mark.integration


def test_every_enqueued_task_is_executed_once(
    postgres: LocalPostgres,
    redis_server: LocalRedis,
    start_backend: Callable[..., Backend],
    start_worker: Callable[..., Worker],
) -> None:
    env = prepare_database(postgres, redis_server, "finch_tasks", "1MB")
    env["REDIS_BROKER_DB"] = "2"  # a broker queue of its own: other tests leave messages in 0
    api = start_backend(env)
    worker = start_worker(env)
    task_ids = []
    for i in range(12):
        created = api.post(
            "/api/transactions",
            {"account": 1 + i % 3, "category": 5, "amount_cents": -100 * (i + 1)},
        )
        assert created.status == 201, created.body
        task_ids.append(created.json()["task_id"])

    def all_done() -> bool:
        return bool(api.get("/api/tasks/stats").json()["done"] == 12)

    wait_for(all_done, 60, "12 tasks done", worker.procs[0])
    stats = api.get("/api/tasks/stats").json()
    assert stats["pending"] == 0 and stats["failed"] == 0 and stats["duplicate_executions"] == 0
    assert stats["by_name"]["finch.recompute_budget"] == {"done": 12}
    budgets = postgres.psql(
        "SELECT account_id, spent_cents FROM finch_budget WHERE "
        "category_id = 5 AND updated_at IS NOT NULL ORDER BY account_id",
        dbname="finch_tasks",
    )
    assert len(budgets.splitlines()) == 3, budgets
    text = worker.metrics()
    match = re.search(
        r'^finch_celery_tasks_total\{state="succeeded",'
        r'task="finch.recompute_budget"\} (\S+)$',
        text,
        re.M,
    )
    assert match and float(match.group(1)) == 12.0, text
    assert re.search(r'^finch_celery_queue_length\{queue="celery"\} 0.0$', text, re.M)


def test_beat_enqueues_the_periodic_rollup(
    postgres: LocalPostgres,
    redis_server: LocalRedis,
    start_worker: Callable[..., Worker],
) -> None:
    env = prepare_database(postgres, redis_server, "finch_beat", "1MB")
    env["REDIS_BROKER_DB"] = "3"
    worker = start_worker(env, beat=True, FINCH_BEAT_INTERVAL_SECONDS="0.5")

    def rollups() -> int:
        return int(
            postgres.psql(
                "SELECT count(*) FROM finch_taskrecord WHERE name = "
                "'finch.rollup_daily' AND state = 'done'",
                dbname="finch_beat",
            )
        )

    wait_for(lambda: rollups() >= 3, 60, "3 periodic rollups", worker.procs[-1])
    assert postgres.psql("SELECT count(*) FROM finch_dailyreport", dbname="finch_beat") == "1"
    schedule_files = list(worker.run_dir.glob("celerybeat-schedule*"))
    assert schedule_files, "beat must write its schedule under CELERY_BEAT_SCHEDULE_DIR"
