"""Every `Platform` method held to its docstring (finchsim/platform/base.py), on every platform.

Parametrised by platform (`tests/platform/conftest.py`): kwok, and the local platform (the real
control plane with our kubelet). Each test leaves the topology as it found it, and prints its
before/after evidence when it fails. Numbers come from the rendered overlay, never from the test."""

from __future__ import annotations

import ipaddress
import subprocess
import time
from pathlib import Path

import pytest

from finchsim.errors import PlatformError
from finchsim.platform.base import Capability, ComponentState, Platform, PodState
from finchsim.platform.kubelet.addresses import SERVICE_RANGE
from finchsim.platform.manifests import render
from finchsim.platform.network.endpoints import headless_ip
from finchsim.platform.tools import find_tool
from finchsim.platform.topology import Topology, build_topology
from finchsim.project import Project
from tests.platform.conftest import NS


@pytest.fixture(scope="module")
def topology(project: Project) -> Topology:
    return build_topology(render(project, "production"))


def pods_of(platform: Platform, owner: str) -> list[PodState]:
    return [p for p in platform.pods() if p.owner == owner and not p.deleting]


def component(platform: Platform, name: str) -> ComponentState:
    return next(c for c in platform.components() if c.name == name)


def settled(platform: Platform, name: str, replicas: int) -> bool:
    c = component(platform, name)
    live = pods_of(platform, name)
    return (
        c.desired == replicas
        and c.ready == replicas
        and c.updated == replicas
        and len(live) == replicas
    )


def test_up_brings_every_workload_to_its_desired_ready_replicas(
    platform: Platform, topology: Topology
) -> None:
    components = {c.name: c for c in platform.components()}
    assert set(components) == set(topology.workloads), components
    for name, w in topology.workloads.items():
        c = components[name]
        assert (c.kind, c.namespace) == (w.kind, NS)
        assert c.ready == c.desired == c.available == w.replicas, c


def test_pods_name_their_workload_node_uid_and_containers(
    platform: Platform, topology: Topology
) -> None:
    now = time.time()
    pods = platform.pods()
    nodes = {n.name for n in platform.nodes()}
    assert {p.owner for p in pods} >= set(topology.workloads)
    for pod in pods:
        w = topology.workloads.get(pod.owner)
        if w is None:
            continue
        assert pod.owner_kind == w.kind, pod
        assert pod.uid and pod.node in nodes and pod.phase == "Running" and pod.ready, pod
        assert 0 < pod.created <= now, pod
        assert all(pod.labels.get(k) == v for k, v in w.labels.items()), pod
        assert [c.name for c in pod.containers] == [c.name for c in w.containers], pod
        assert pod.restarts == 0


def test_nodes_report_readiness_allocatable_and_zones(platform: Platform) -> None:
    nodes = platform.nodes()
    assert nodes and all(n.ready and n.schedulable for n in nodes), nodes
    assert all(n.cpu_allocatable_m > 0 and n.memory_allocatable_bytes > 0 for n in nodes)
    assert all("topology.kubernetes.io/zone" in n.labels for n in nodes)


def test_hpas_follow_the_manifests(platform: Platform, topology: Topology) -> None:
    hpas = {h.name: h for h in platform.hpas()}
    assert set(hpas) == set(topology.hpas)
    for name, spec in topology.hpas.items():
        h = hpas[name]
        assert (h.target, h.min_replicas, h.max_replicas) == (
            spec.target,
            spec.min_replicas,
            spec.max_replicas,
        )
        assert dict(h.targets) == {m.resource: m.utilization for m in spec.metrics}


def test_scale_changes_desired_replicas_and_names_known_workloads_on_a_typo(
    platform: Platform,
) -> None:
    before = component(platform, "finch-worker").desired
    since = time.time() - 1
    platform.scale(NS, "finch-worker", before + 1)
    platform.wait_for(lambda: settled(platform, "finch-worker", before + 1), 60, "worker scaled up")
    platform.scale(NS, "finch-worker", before)
    platform.wait_for(lambda: settled(platform, "finch-worker", before), 60, "worker scaled back")
    if Capability.EVENTS in platform.capabilities:
        reasons = {(e.object, e.reason) for e in platform.events(since)}
        assert ("Deployment/finch-worker", "ScalingReplicaSet") in reasons, reasons
    with pytest.raises(PlatformError) as caught:
        platform.scale(NS, "finch-workr", 1)
    assert f"no workload {NS}/finch-workr; have: " in str(caught.value)
    assert f"{NS}/finch-worker" in str(caught.value)


def test_rollout_replaces_every_pod_with_a_new_revision(platform: Platform) -> None:
    before = {p.uid for p in pods_of(platform, "finch-frontend")}
    want = component(platform, "finch-frontend").desired
    platform.rollout(NS, "finch-frontend")

    def replaced() -> bool:
        now = {p.uid for p in pods_of(platform, "finch-frontend")}
        return not (now & before) and settled(platform, "finch-frontend", want)

    platform.wait_for(replaced, 120, "every frontend pod replaced")


def test_delete_pod_is_replaced_by_its_controller(platform: Platform) -> None:
    victim = pods_of(platform, "finch-backend")[0]
    want = component(platform, "finch-backend").desired
    platform.delete_pod(NS, victim.name, grace_period=0)

    def replaced() -> bool:
        uids = {p.uid for p in pods_of(platform, "finch-backend")}
        return victim.uid not in uids and settled(platform, "finch-backend", want)

    platform.wait_for(replaced, 60, f"{victim.name} replaced")
    with pytest.raises(PlatformError, match=r"delete pod .*/no-such-pod"):
        platform.delete_pod(NS, "no-such-pod")


def test_run_job_runs_the_cronjobs_template_to_completion(platform: Platform) -> None:
    result = platform.run_job(NS, "postgres-backup", timeout=120)
    assert result.succeeded, result
    assert result.name.startswith("postgres-backup-manual-")
    assert result.reason in ("Complete", "CompletionsReached"), result
    with pytest.raises(PlatformError, match=r"no CronJob .*/nope; have: postgres-backup"):
        platform.run_job(NS, "nope")


def test_drain_evicts_everything_and_uncordon_restores(platform: Platform) -> None:
    node = next(p.node for p in pods_of(platform, "finch-frontend"))
    assert node is not None
    platform.drain_node(node, timeout=120)
    on_node = [p for p in platform.pods() if p.node == node and not p.deleting]
    assert on_node == [], on_node
    assert not next(n for n in platform.nodes() if n.name == node).schedulable
    # A pod whose volume is pinned to the drained node's zone may wait for it: say so.
    print(
        "pending after the drain:",
        [(p.name, p.reason) for p in platform.pods() if p.phase == "Pending"],
    )
    platform.uncordon_node(node)
    assert next(n for n in platform.nodes() if n.name == node).schedulable
    platform.wait_for(
        lambda: all(c.ready == c.desired for c in platform.components()), 120, "all ready again"
    )


def test_exec_runs_with_the_containers_environment_where_pods_run(platform: Platform) -> None:
    """`kubectl exec`: the command sees what the container sees (here: the Service address
    its environment names). KWOK runs no processes and refuses."""
    argv = ["sh", "-c", "echo $POSTGRES_HOST"]
    if Capability.EXEC not in platform.capabilities:
        with pytest.raises(PlatformError, match="lacks the 'exec' capability"):
            platform.exec_command(NS, "finch-backend", argv)
        return
    said = platform.exec_command(NS, "finch-backend", argv).strip()
    assert said == headless_ip(NS, "finch-postgres"), said
    # The Service links a kubelet adds (envvars.py): a Service with a cluster IP, and the API
    # server's own; none for a headless one.
    links = "$FINCH_BACKEND_SERVICE_HOST $FINCH_BACKEND_SERVICE_PORT $FINCH_BACKEND_PORT "
    links += "$KUBERNETES_SERVICE_HOST ${FINCH_POSTGRES_SERVICE_HOST:-none}"
    host, port, url, api, postgres = platform.exec_command(
        NS, "finch-backend", ["sh", "-c", f"echo {links}"]
    ).split()
    assert ipaddress.ip_address(host) in ipaddress.ip_network(SERVICE_RANGE), host
    assert ipaddress.ip_address(api) in ipaddress.ip_network(SERVICE_RANGE), api
    assert (url, postgres) == (f"tcp://{host}:{port}", "none")
    with pytest.raises(PlatformError, match=r"exit 3"):
        platform.exec_command(NS, "finch-backend", ["sh", "-c", "exit 3"])


def test_a_killed_container_is_restarted_by_its_kubelet(platform: Platform) -> None:
    victim = pods_of(platform, "finch-frontend")[0]
    if Capability.KILL_CONTAINER not in platform.capabilities:
        with pytest.raises(PlatformError, match="lacks the 'kill-container' capability"):
            platform.kill_container(NS, victim.name, "finch-frontend")
        return
    restarts = victim.containers[0].restarts
    platform.kill_container(NS, victim.name, "finch-frontend")

    def restarted() -> bool:
        now = next((p for p in pods_of(platform, "finch-frontend") if p.uid == victim.uid), None)
        return now is not None and now.containers[0].restarts == restarts + 1 and now.ready

    platform.wait_for(restarted, 90, f"{victim.name}'s container restarted and ready")


def test_wait_for_names_what_was_not_reached(platform: Platform) -> None:
    with pytest.raises(PlatformError) as caught:
        platform.wait_for(lambda: False, 0.5, "a condition that never holds", interval=0.1)
    assert str(caught.value) == "timed out after 0s waiting for a condition that never holds"
    assert platform.wait_for(lambda: 42, 1, "an answer") == 42


def test_actions_without_the_capability_are_refused_with_a_clear_message(
    platform: Platform,
) -> None:
    lacking = {
        Capability.KILL_CONTAINER: lambda: platform.kill_container(NS, "x", "y"),
        Capability.INGRESS: lambda: platform.ingress_url("api.finch.example.com"),
        Capability.PROMETHEUS: lambda: platform.prometheus_url(),
        Capability.SIMULATED_LOAD: lambda: platform.offer_load({"api.finch.example.com": 1}),
        Capability.EXEC: lambda: platform.exec_command(NS, "finch-backend", ["true"]),
    }
    for capability, action in lacking.items():
        if capability in platform.capabilities:
            continue
        with pytest.raises(PlatformError) as caught:
            action()
        assert f"lacks the {capability.value!r} capability" in str(caught.value)
    assert platform.missing({Capability.KILL_CONTAINER, Capability.DRAIN}) == sorted(
        {Capability.KILL_CONTAINER, Capability.DRAIN} - platform.capabilities
    )


def test_kubeconfig_lets_kubectl_see_what_finchsim_brought_up(platform: Platform) -> None:
    if Capability.KUBECONFIG not in platform.capabilities:
        pytest.skip(f"{platform.name} has no API server")
    path = platform.kubeconfig()
    assert isinstance(path, Path) and path.is_file()
    # The API server's credentials: only ours to read.
    secrets = [path, *sorted((path.parent / "pki").glob("*.key"))]
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in secrets} == {
        p.name: "0o600" for p in secrets
    }

    def kubectl(*args: str, until_it_works: bool = False) -> str:
        done = subprocess.run(
            [find_tool("kubectl"), "--kubeconfig", str(path), "-n", NS, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if until_it_works and done.returncode != 0:
            return ""  # e.g. `top` before metrics-server's first scrape
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout

    assert "deployment.apps/finch-backend" in kubectl("get", "deployments", "-o", "name").split()
    assert "Metrics:" in kubectl("describe", "hpa", "finch-backend-hpa")
    assert kubectl("get", "events", "-o", "name").strip()
    if Capability.PROCESSES in platform.capabilities:  # measured usage, real logs
        backend = pods_of(platform, "finch-backend")[0].name
        platform.wait_for(
            lambda: backend in kubectl("top", "pods", "--no-headers", until_it_works=True),
            120,
            "kubectl top pods",
        )
        assert kubectl("logs", backend, "-c", "finch-backend", "--tail", "5").strip()
