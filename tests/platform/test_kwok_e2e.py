"""End to end on the real control plane with KWOK nodes: what only real controllers show.

Every overlay applies and rolls out; an eviction is refused by a PodDisruptionBudget; the real
HPA scales out and back in on the load model's simulated usage; a node loss produces the
node-lifecycle controller's taints and evictions at its own timings. Timings come from the test
settings (`tests/platform/conftest.py`); the expected numbers are derived from them and from
the manifests, and each test prints what it measured."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes.client import V1PodCondition

from finchsim.durations import parse_duration
from finchsim.errors import PlatformError
from finchsim.models.load import MODEL_FILE, load_model
from finchsim.platform.base import NodeState, Platform, PodState
from finchsim.platform.kubernetes import drain
from finchsim.platform.kubernetes.client import Clients
from finchsim.platform.manifests import render
from finchsim.platform.topology import build_topology
from finchsim.project import Project
from tests.platform.conftest import NS, TEST_TIMINGS, bring_up

pytestmark = pytest.mark.kwok
API = "api.finch.example.com"


@pytest.fixture(scope="module")
def kwok(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    events: list[str] = []
    platform = bring_up("kwok", project, tmp_path_factory.mktemp("kwok"), events)
    try:
        yield platform
    finally:
        platform.down()


def clients_for(platform: Platform, directory: Path) -> Clients:
    return Clients.connect(platform.kubeconfig(), directory / "discovery.json")


@pytest.mark.parametrize("overlay", ["staging", "recommended"])
def test_every_overlay_applies_and_rolls_out(
    overlay: str, project: Project, tmp_path: Path
) -> None:
    topology = build_topology(render(project, overlay))
    platform = bring_up("kwok", project, tmp_path, [], overlay=overlay)
    try:
        ready = {c.name: c.ready for c in platform.components()}
        assert ready == {n: w.replicas for n, w in topology.workloads.items()}, ready
    finally:
        platform.down()


def test_an_eviction_is_refused_while_the_budget_has_no_disruption_left(
    kwok: Platform, tmp_path: Path
) -> None:
    """finch-worker: 2 replicas, maxUnavailable 1. With one worker unready, the other may not
    be evicted: the drain retries until its timeout, then names the budget."""

    def workers() -> list[PodState]:
        return sorted(
            (p for p in kwok.pods() if p.owner == "finch-worker" and not p.deleting),
            key=lambda p: p.name,
        )

    assert len(workers()) == 2, workers()
    if workers()[0].node == workers()[1].node:
        # Both on one node: draining it would evict the unready one first. Move one away.
        shared, moved = workers()[0].node or "", workers()[0]
        api0 = clients_for(kwok, tmp_path)
        drain.cordon(api0, shared)
        kwok.delete_pod(NS, moved.name, grace_period=0)
        kwok.wait_for(
            lambda: len(workers()) == 2 and all(p.ready for p in workers()),
            60,
            "the moved worker ready",
        )
        kwok.uncordon_node(shared)
        api0.close()
    sick, healthy = workers()
    assert sick.node != healthy.node, workers()
    api = clients_for(kwok, tmp_path)
    try:
        # KWOK runs no probes: mark one pod unready as a failing readiness probe would.
        pod = api.core.read_namespaced_pod(sick.name, NS)
        pod.status.conditions = [
            c for c in pod.status.conditions if c.type not in ("Ready", "ContainersReady")
        ] + [
            V1PodCondition(type="Ready", status="False", reason="ReadinessProbeFailed"),
            V1PodCondition(type="ContainersReady", status="False"),
        ]
        api.core.replace_namespaced_pod_status(sick.name, NS, pod)
        kwok.wait_for(
            lambda: (
                api.policy.read_namespaced_pod_disruption_budget(
                    "finch-worker", NS
                ).status.disruptions_allowed
                == 0
            ),
            60,
            "the budget to count the unready worker",
        )
        assert healthy.node is not None
        started = time.monotonic()
        with pytest.raises(PlatformError) as caught:
            kwok.drain_node(healthy.node, timeout=12)
        waited = time.monotonic() - started
        print(f"drain refused after {waited:.1f}s: {caught.value}")
        assert (
            f"cannot evict {NS}/{healthy.name} after 12s: PodDisruptionBudget finch-worker "
            "allows 0 disruption(s): 1 healthy of 2 expected, needs 1"
        ) in str(caught.value)
        assert waited >= 12
        assert any(p.name == healthy.name and not p.deleting for p in kwok.pods())
    finally:
        kwok.uncordon_node(healthy.node or "")
        with contextlib.suppress(PlatformError):  # its replacement is ready at once
            kwok.delete_pod(NS, sick.name, grace_period=0)
        api.close()


def test_the_real_hpa_scales_out_on_simulated_load_and_back_in(
    kwok: Platform, project: Project
) -> None:
    """Offer enough API traffic that the load model puts finch-backend at twice its CPU target;
    the real HPA (via metrics-server) must add pods, then remove them once the load is gone
    and the downscale stabilisation window has passed."""
    topology = build_topology(render(project, "production"))
    hpa = topology.hpas["finch-backend-hpa"]
    backend = topology.workloads["finch-backend"]
    cpu_target = next(m.utilization for m in hpa.metrics if m.resource == "cpu")
    request_m = backend.containers[0].resources.cpu_request_m
    model = load_model(project.root / MODEL_FILE)
    cost = model.workloads["finch-backend"]["finch-backend"].perHost[API].cpuSecondsPerRequest
    # rps that puts each of min_replicas pods at 2x the target (still under the CPU limit).
    rps = 2 * cpu_target / 100 * request_m / 1000 * hpa.min_replicas / cost
    kwok.offer_load({API: rps})
    started = time.monotonic()

    def backend_replicas() -> int:
        return next(c.desired for c in kwok.components() if c.name == "finch-backend")

    kwok.wait_for(lambda: backend_replicas() > hpa.min_replicas, 180, "the HPA to scale out")
    out_after = time.monotonic() - started
    peak = kwok.wait_for(
        lambda: (n := backend_replicas()) >= math.ceil(2 * hpa.min_replicas * 0.9) and n,
        180,
        "the HPA to reach about twice its minimum",
    )
    kwok.offer_load({})
    idle_since = time.monotonic()
    kwok.wait_for(lambda: backend_replicas() == hpa.min_replicas, 240, "the HPA to scale back in")
    in_after = time.monotonic() - idle_since
    print(
        f"offered {rps:.1f} req/s: scale-out after {out_after:.0f}s, peak {peak}, "
        f"back to {hpa.min_replicas} {in_after:.0f}s after the load stopped"
    )
    assert in_after >= parse_duration(TEST_TIMINGS["hpaDownscaleStabilization"])


def test_a_node_loss_taints_evicts_and_reschedules_as_the_controllers_do(
    kwok: Platform,
) -> None:
    grace = parse_duration(TEST_TIMINGS["nodeMonitorGracePeriod"])
    toleration = parse_duration(TEST_TIMINGS["unreachableToleration"])
    # The lease was last renewed up to a renew interval (a quarter of the lease, as the kubelet
    # does) before the node stopped; the lifecycle controller looks every monitor period.
    renew = parse_duration(TEST_TIMINGS["nodeLeaseDuration"]) / 4
    monitor = parse_duration(TEST_TIMINGS["nodeMonitorPeriod"])
    victim_pod = next(p for p in kwok.pods() if p.owner == "finch-postgres")
    node = victim_pod.node
    assert node is not None
    before = {p.name: p.uid for p in kwok.pods() if p.node == node and not p.deleting}
    moved = [n for n in before if not n.startswith("finch-postgres")]
    failed_at = time.monotonic()
    kwok.fail_node(node)

    def state() -> NodeState:
        return next(n for n in kwok.nodes() if n.name == node)

    kwok.wait_for(lambda: not state().ready, grace + 60, f"{node} NotReady")
    not_ready_after = time.monotonic() - failed_at
    kwok.wait_for(
        lambda: (
            {
                "node.kubernetes.io/unreachable:NoSchedule",
                "node.kubernetes.io/unreachable:NoExecute",
            }
            <= set(state().taints)
        ),
        30,
        f"the unreachable taints on {node}",
    )
    print(f"{node}: NotReady {not_ready_after:.0f}s after it stopped; taints {state().taints}")
    assert grace - renew <= not_ready_after <= grace + monitor + 10

    def rescheduled() -> bool:
        live = {p.name: p for p in kwok.pods() if not p.deleting}
        gone = all(n not in live or live[n].uid != before[n] for n in moved)
        return gone and all(
            c.ready == c.desired for c in kwok.components() if c.kind == "Deployment"
        )

    kwok.wait_for(rescheduled, toleration + 120, "the Deployment pods rescheduled elsewhere")
    evicted_after = time.monotonic() - failed_at
    print(f"Deployment pods replaced {evicted_after:.0f}s after the failure")
    assert evicted_after >= grace - renew + toleration
    # The StatefulSet pod waits for the node: no kubelet confirms its end, so no replacement.
    postgres = [p for p in kwok.pods() if p.owner == "finch-postgres"]
    assert [(p.name, p.uid, p.deleting) for p in postgres] == [
        (victim_pod.name, victim_pod.uid, True)
    ], postgres
    kwok.recover_node(node)
    kwok.wait_for(lambda: state().ready and not state().taints, 60, f"{node} Ready again")
    kwok.wait_for(
        lambda: any(
            p.owner == "finch-postgres" and p.ready and p.uid != victim_pod.uid for p in kwok.pods()
        ),
        120,
        "PostgreSQL recreated once its node returned",
    )


def test_a_component_that_exited_at_start_is_started_again(kwok: Platform) -> None:
    """metrics-server can exit while the API server starts (kwokctl does not wait between
    dependency groups); `restart_dead` starts it again and the platform no longer reports it."""
    cluster = kwok.provider.cluster  # type: ignore[attr-defined]
    before = cluster.pids()["metrics-server"]
    os.kill(before, signal.SIGKILL)
    kwok.wait_for(lambda: cluster.dead_components() == ["metrics-server"], 30, "it is dead")
    with pytest.raises(PlatformError, match="metrics-server"):
        kwok.poll()
    cluster.restart_dead()
    assert cluster.dead_components() == []
    assert cluster.pids()["metrics-server"] != before
    kwok.poll()
