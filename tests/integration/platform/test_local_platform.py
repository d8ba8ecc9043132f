"""The local platform against real processes: up to ready, ingress, replicas, rate limit, down.

One topology (production overlay) is brought up for the module; each test drives the
controller itself (`platform.step()`) while it waits, exactly as `finchsim up` does."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from finchsim.platform.local.platform import LocalPlatform
from finchsim.platform.runstate import state_path
from finchsim.project import Project
from tests.integration.platform.support import API, NS, WEB, get, wait_for

pytestmark = pytest.mark.integration


LOG: list[str] = []  # what the module's platform logged (its events)


@pytest.fixture(scope="module")
def platform(project: Project) -> Iterator[LocalPlatform]:
    plat = LocalPlatform(project, "production", log=LOG.append)
    plat.up(timeout=180)
    try:
        yield plat
    finally:
        plat.down()


def test_every_workload_reaches_its_replicas(platform: LocalPlatform) -> None:
    ready = {w.name: (w.ready, w.desired) for w in platform.snapshot_value.workloads}
    # The numbers come from the production overlay (seed: backend 3, frontend 2, worker 2).
    assert ready["finch-backend"] == (3, 3)
    assert ready["finch-frontend"] == (2, 2)
    assert ready["finch-worker"] == (2, 2)
    assert ready["finch-postgres"] == (1, 1)
    nodes = {p.node for p in platform.snapshot_value.pods if p.owner == "finch-backend"}
    assert len(nodes) == 3, f"backend replicas not spread over the 3 nodes: {nodes}"


def test_ingress_routes_both_hosts_with_tls_and_hsts(platform: LocalPlatform) -> None:
    base = platform.ingress_url(API)
    status, headers = get(f"{base}/healthz/ready", API)
    assert status == 200
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    status, headers = get(f"{base}/health", WEB)
    assert status == 200
    # The SPA itself, read from disk by the frontend pods' unprivileged nginx workers.
    status, headers = get(f"{base}/", WEB)
    assert (status, headers["Cache-Control"]) == (200, "no-cache"), headers
    http = base.replace("https", "http").replace(
        str(platform.ports["https"]), str(platform.ports["http"])
    )
    status, headers = get(f"{http}/healthz/ready", API)
    assert (status, headers["Location"]) == (308, f"https://{API}/healthz/ready")


def test_killed_replica_leaves_upstream_and_comes_back(platform: LocalPlatform) -> None:
    assert platform.controller is not None
    before = platform.controller.endpoints("finch-backend")
    victim = next(p.name for p in platform.snapshot_value.pods if p.owner == "finch-backend")
    platform.delete_pod(NS, victim, grace_period=0)
    platform.step()
    after_kill = platform.controller.endpoints("finch-backend")
    assert len(after_kill) == len(before) - 1, (before, after_kill)
    ctl = platform.controller
    wait_for(
        platform,
        lambda: len(ctl.endpoints("finch-backend")) == len(before),
        120,
        "a replacement backend replica ready",
    )
    names = {p.name for p in platform.snapshot_value.pods if p.owner == "finch-backend"}
    assert victim not in names
    status, _ = get(f"{platform.ingress_url(API)}/healthz/ready", API)
    assert status == 200


def test_rate_limit_rejects_beyond_burst_per_client_ip(platform: LocalPlatform) -> None:
    """limit-rpm 100 x burst multiplier 5: ~500 immediate requests pass, then 503 (the
    ingress-nginx default status; the overlay does not set limit-req-status-code)."""
    base = platform.ingress_url(API)
    started = time.monotonic()
    codes = [get(f"{base}/healthz/live", API, "198.18.7.7")[0] for _ in range(540)]
    elapsed = time.monotonic() - started
    accepted, rejected = codes.count(200), codes.count(503)
    # nginx's leaky bucket: the first request plus the burst at once, then 100/min drain back in
    # while the requests are being sent (a busy machine sends them more slowly).
    most = 501 + int(100 / 60 * elapsed) + 1
    assert 495 <= accepted <= most, (accepted, rejected, f"{elapsed:.1f}s")
    assert accepted + rejected == 540
    # Another client address has its own budget.
    assert get(f"{base}/healthz/live", API, "198.18.7.8")[0] == 200
    # The rejections are counted as ingress-nginx counts them (nginx flushes its log each 1 s).

    def counted() -> dict[str, int]:
        return {
            c.status: c.count
            for c in platform.snapshot_value.ingress
            if c.host == API and c.method == "GET"
        }

    wait_for(platform, lambda: counted().get("503", 0) >= rejected, 10, "rejections counted")
    assert counted()["200"] >= accepted + 1
    # Prometheus sees them at its next scrape of the platform's metrics (not before).
    promql = (
        'nginx_ingress_controller_requests{host="api.finch.example.com",'
        'status="503",service="finch-backend"}'
    )
    limited = query(
        platform, promql, until=lambda r: bool(r) and float(r[0]["value"][1]) >= rejected
    )
    assert limited and float(limited[0]["value"][1]) >= rejected, (
        f"Prometheus: {limited}; the platform counted {counted()}, the client saw {rejected}"
    )


def query(
    platform: LocalPlatform,
    promql: str,
    timeout: float = 30,
    until: Callable[[list[dict[str, Any]]], bool] = bool,
) -> list[dict[str, Any]]:
    """An instant query, retried (while reconciling) until `until(result)` holds (by default:
    until it returns something); the last result after `timeout`."""
    url = f"{platform.prometheus_url()}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(url, timeout=5) as resp:
            result: list[dict[str, Any]] = json.load(resp)["data"]["result"]
        if until(result) or time.monotonic() > deadline:
            return result
        platform.step()
        time.sleep(1)


def test_platform_metrics_speak_kubernetes_names(platform: LocalPlatform) -> None:
    result = query(platform, 'kube_deployment_status_replicas_ready{deployment="finch-backend"}')
    assert result and result[0]["metric"]["namespace"] == "finch-production"
    assert result[0]["value"][1] == "3"
    cpu = query(platform, 'container_cpu_usage_seconds_total{container="finch-backend"}')
    assert {r["metric"]["pod"] for r in cpu} == {
        p.name for p in platform.snapshot_value.pods if p.owner == "finch-backend"
    }


def test_monitoring_stack_is_wired_like_the_cluster(platform: LocalPlatform) -> None:
    """Every scrape job is up (node exporter, Alertmanager, the pods' exporters), and
    Prometheus sends its alerts to the local Alertmanager."""
    up = query(platform, "up == 1")
    jobs = {r["metric"]["job"] for r in up}
    assert {
        "prometheus",
        "alertmanager",
        "node-exporter",
        "kube-state-metrics",
        "finch-backend",
        "finch-postgres",
        "finch-redis",
    } <= jobs, jobs
    assert query(platform, 'node_cpu_seconds_total{mode="idle"}')
    url = f"{platform.prometheus_url()}/api/v1/alertmanagers"
    with urllib.request.urlopen(url, timeout=5) as resp:
        active = json.load(resp)["data"]["activeAlertmanagers"]
    assert [a["url"] for a in active] == [f"{platform.alertmanager_url()}/api/v2/alerts"]
    with urllib.request.urlopen(f"{platform.alertmanager_url()}/api/v2/status", timeout=5) as resp:
        assert json.load(resp)["cluster"]["status"] == "disabled"


def test_killed_ingress_and_prometheus_are_restarted_and_told(platform: LocalPlatform) -> None:
    """Infrastructure is supervised: `kill -9` of the ingress nginx master (its workers keep
    the ports) or of Prometheus is an event and a restart, not the end of the run."""
    assert platform.ingress is not None and platform.monitoring is not None
    prometheus = platform.monitoring.procs["prometheus"]
    killed = {"ingress": platform.ingress.proc, "prometheus": prometheus.proc}
    for proc in killed.values():
        psutil.Process(proc.pid).kill()
    wait_for(
        platform,
        lambda: all(
            any(line.startswith(f"{name} exited (status -9") for line in LOG) for name in killed
        ),
        60,
        "both restarts told",
    )
    assert platform.ingress.proc is not killed["ingress"]
    assert prometheus.proc is not killed["prometheus"]
    wait_for(
        platform,
        lambda: get(f"{platform.ingress_url(API)}/healthz/ready", API)[0] == 200,
        60,
        "the restarted ingress serving",
    )
    ready = f"http://127.0.0.1:{platform.ports['prometheus']}/-/ready"
    wait_for(platform, lambda: _answers(ready), 60, "the restarted Prometheus ready")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def test_second_up_is_refused(platform: LocalPlatform, project: Project) -> None:
    from finchsim.errors import PlatformError

    other = LocalPlatform(project, "production")
    state = json.loads(state_path(project).read_text())
    state["pid"] = psutil.Process().ppid()  # pretend another live process holds the run
    state_path(project).write_text(json.dumps(state))
    try:
        with pytest.raises(PlatformError, match="already up"):
            other.up()
    finally:
        state["pid"] = psutil.Process().pid
        state_path(project).write_text(json.dumps(state))


def test_down_leaves_nothing(project: Project) -> None:
    plat = LocalPlatform(project, "staging")
    plat.up(timeout=180)
    pids = set()
    for pod in plat.controller.pods.values():  # type: ignore[union-attr]
        for run in pod.containers:
            if run.process is not None:
                pids |= set(run.process.tree_pids())
    run_dir = plat.run_dir
    ports = set(plat.ports.values())
    plat.down()
    alive = [
        p
        for p in pids
        if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
    assert not alive, f"processes left: {alive}"
    assert not Path(run_dir).exists()
    assert not state_path(project).exists()
    listening = {c.laddr.port for c in psutil.net_connections("tcp") if c.status == "LISTEN"}
    assert not ports & listening
