"""The local platform end to end, what only it does: the ingress in front of real pods, the
rate limit per client address, Prometheus speaking Kubernetes' metric names, the monitoring
stack wired like the cluster's, and the edge's processes supervised.

The production overlay is brought up once for the module (short test timings,
tests/platform/conftest.py). Replicas, rollouts, deletions, drains and `kubectl` are held to
the seam's contract for every platform in tests/platform/test_contract.py; a second `up` and
`down` leaving nothing in tests/platform/test_lifecycle.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial

import psutil
import pytest

from finchsim.platform.base import Platform
from finchsim.platform.local.ingress import ControllerSettings
from finchsim.platform.manifests import render
from finchsim.platform.providers.local_edge import CONTROLLER_SETTINGS
from finchsim.platform.topology import Topology, build_topology
from finchsim.project import Project
from tests.integration.platform.support import (
    API,
    NS,
    WEB,
    answers,
    get,
    get_json,
    listener,
    query,
    routed,
)
from tests.platform.conftest import bring_up

pytestmark = pytest.mark.kwok

EVENTS: list[str] = []  # what the module's platform logged
ANNOTATION = "nginx.ingress.kubernetes.io/"


@pytest.fixture(scope="module")
def platform(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    plat = bring_up("local", project, tmp_path_factory.mktemp("local"), EVENTS)
    try:
        yield plat
    finally:
        plat.down()


@pytest.fixture(scope="module")
def topology(project: Project) -> Topology:
    return build_topology(render(project, "production"))


def backend_pods(platform: Platform) -> list[str]:
    return sorted(p.name for p in platform.pods() if p.owner == "finch-backend" and not p.deleting)


def test_ingress_routes_both_hosts_with_tls_and_hsts(platform: Platform) -> None:
    base = platform.ingress_url(API)
    headers = routed(platform, f"{base}/healthz/ready", API)
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert get(f"{base}/health", WEB)[0] == 200
    # The SPA itself, read from disk by the frontend pods' unprivileged nginx workers.
    status, headers = get(f"{platform.ingress_url(WEB)}/", WEB)
    assert (status, headers.get("Cache-Control")) == (200, "no-cache"), headers
    # Plain http is the same nginx's other port: force-ssl-redirect answers it.
    nginx = listener(base)
    https = int(base.rsplit(":", 1)[1])
    ports = {c.laddr.port for c in nginx.net_connections("tcp") if c.status == "LISTEN"}
    (http,) = ports - {https}
    status, headers = get(f"http://127.0.0.1:{http}/healthz/ready", API)
    assert (status, headers.get("Location")) == (308, f"https://{API}/healthz/ready"), headers


def test_a_killed_replica_costs_no_request_through_the_ingress(platform: Platform) -> None:
    """A backend pod deleted at once (a node OOM) while a client keeps calling: nginx's
    upstreams follow the ready endpoints, so no request fails, and the replacement comes."""
    before = backend_pods(platform)
    victim = before[0]
    base = platform.ingress_url(API)
    codes: list[int] = []
    platform.delete_pod(NS, victim, grace_period=0)

    def replaced() -> bool:
        codes.append(get(f"{base}/healthz/ready", API)[0])
        now = {p.name for p in platform.pods() if p.owner == "finch-backend" and p.ready}
        return victim not in now and len(now) == len(before)

    platform.wait_for(replaced, 180, f"a ready replacement of {victim}")
    codes += [get(f"{base}/healthz/ready", API)[0] for _ in range(10)]
    print(f"before: {before}; after: {backend_pods(platform)}; answers: {codes}")
    assert set(codes) == {200}, codes


def test_rate_limit_rejects_beyond_burst_per_client_ip(
    platform: Platform, topology: Topology
) -> None:
    """limit-rpm x limit-burst-multiplier requests pass at once (nodelay), then the
    controller's limit-req-status-code; another client address has its own budget."""
    notes = topology.ingresses["finch-api"].annotations
    rpm = int(notes[f"{ANNOTATION}limit-rpm"])
    burst = rpm * int(notes[f"{ANNOTATION}limit-burst-multiplier"])
    limited = ControllerSettings.from_configmap(
        topology.config.get(CONTROLLER_SETTINGS, {})
    ).limit_req_status_code
    base = platform.ingress_url(API)
    sent = burst + 40
    started = time.monotonic()
    codes = [get(f"{base}/healthz/live", API, "198.18.7.7")[0] for _ in range(sent)]
    elapsed = time.monotonic() - started
    accepted, rejected = codes.count(200), codes.count(limited)
    # The leaky bucket: the first request plus the burst at once, then `rpm` a minute drain
    # back in while the requests are being sent (a busy machine sends them more slowly).
    most = 1 + burst + int(rpm / 60 * elapsed) + 1
    assert burst - 5 <= accepted <= most, (accepted, rejected, f"{elapsed:.1f}s")
    assert accepted + rejected == sent, sorted(set(codes))
    assert get(f"{base}/healthz/live", API, "198.18.7.8")[0] == 200


def test_platform_metrics_speak_kubernetes_names(platform: Platform, topology: Topology) -> None:
    """kube-state-metrics' and cAdvisor's series, labelled as on a cluster."""
    replicas = topology.workloads["finch-backend"].replicas
    ready = query(
        platform,
        f'kube_deployment_status_replicas_ready{{namespace="{NS}",deployment="finch-backend"}}',
        until=lambda r: bool(r) and r[0]["value"][1] == str(replicas),
    )
    assert ready[0]["metric"]["namespace"] == NS
    pods = set(backend_pods(platform))
    cpu = query(
        platform,
        f'container_cpu_usage_seconds_total{{namespace="{NS}",container="finch-backend"}}',
        until=lambda r: {s["metric"]["pod"] for s in r} >= pods,
    )
    print({s["metric"]["pod"]: s["value"][1] for s in cpu})


def test_monitoring_stack_is_wired_like_the_cluster(platform: Platform) -> None:
    """Every scrape job is up (Prometheus, Alertmanager, the node exporter, the kube-state
    exporter, the kubelets' cAdvisor, the pods' exporters), and Prometheus sends its alerts to
    one Alertmanager, on loopback, without HA gossip."""
    wanted = {
        "prometheus",
        "alertmanager",
        "node-exporter",
        "kube-state-metrics",
        "kubelet-cadvisor",
        "finch-backend",
        "finch-postgres",
        "finch-redis",
    }
    up = query(platform, "up == 1", until=lambda r: {s["metric"]["job"] for s in r} >= wanted)
    print(sorted({s["metric"]["job"] for s in up}))
    assert query(platform, 'node_cpu_seconds_total{mode="idle"}')
    alertmanagers = get_json(f"{platform.prometheus_url()}/api/v1/alertmanagers")
    (active,) = alertmanagers["data"]["activeAlertmanagers"]
    assert active["url"].startswith("http://127.0.0.1:"), active
    status = get_json(active["url"].removesuffix("/alerts") + "/status")
    assert status["cluster"]["status"] == "disabled", status["cluster"]


def test_killed_ingress_and_prometheus_are_restarted_and_told(platform: Platform) -> None:
    """The edge is supervised: `kill -9` of the ingress nginx master (its workers keep the
    ports) or of Prometheus is an event and a restart, not the end of the run."""
    urls = {"ingress": platform.ingress_url(API), "prometheus": platform.prometheus_url()}
    killed = {name: listener(url) for name, url in urls.items()}
    for proc in killed.values():
        proc.kill()

    def told() -> bool:
        return all(any(e.startswith(f"{n} exited (status -9") for e in EVENTS) for n in killed)

    try:
        platform.wait_for(told, 60, "both restarts told")
    finally:
        print("killed:", killed, "told:", EVENTS[-10:])
    ready = {
        "ingress": (f"{urls['ingress']}/healthz/ready", API),
        "prometheus": (f"{urls['prometheus']}/-/ready", "127.0.0.1"),
    }
    for name, old in killed.items():
        url, host = ready[name]
        platform.wait_for(partial(answers, url, host), 60, f"the restarted {name} serving")
        new = listener(urls[name])
        assert (new.pid, new.create_time()) != (old.pid, old.create_time()), name
        assert not psutil.pid_exists(old.pid) or old.status() == psutil.STATUS_ZOMBIE, name
