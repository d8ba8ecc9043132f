"""The local platform over time: the real controllers acting on what our kubelet runs.

One bring-up of the staging overlay (one replica each, so the machine's two cores go to what is
measured; its PodDisruptionBudgets are the base's, as in production), with the node timings of
tests/kubelet/conftest.py and the HPA's of tests/platform/conftest.py. Each test leaves the
topology as it found it and prints its evidence. Covered elsewhere on this platform, so not
repeated here: a deleted pod replaced by its ReplicaSet and a rollout replacing every pod
(test_contract.py), a failed node turning NotReady (tests/kubelet/test_kubelet.py)."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from finchsim.durations import parse_duration
from finchsim.errors import PlatformError
from finchsim.platform.base import EventRecord, HpaStatus, PodState
from finchsim.platform.kubernetes import drain
from finchsim.platform.kubernetes.client import Clients
from finchsim.platform.kubernetes.platform import KubernetesPlatform
from finchsim.platform.manifests import render
from finchsim.platform.topology import Topology, build_topology
from finchsim.project import Project
from tests.platform.conftest import TEST_TIMINGS, bring_up
from tests.platform.test_contract import component, pods_of, settled
from tests.platform.test_kwok_e2e import clients_for

pytestmark = pytest.mark.kwok

OVERLAY, NS = "staging", "finch-staging"
HPA_TIMINGS = {
    key: parse_duration(TEST_TIMINGS[key]) for key in ("hpaSyncPeriod", "hpaDownscaleStabilization")
}
LOAD_SECONDS = 300  # the most CPU load the HPA test offers, whatever happens
REFUSED_AFTER = 6  # how long the refused drain retries


@pytest.fixture(scope="module")
def topology(project: Project) -> Topology:
    return build_topology(render(project, OVERLAY))


@pytest.fixture(scope="module")
def platform(
    project: Project, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KubernetesPlatform]:
    events: list[str] = []
    up = bring_up(
        "local", project, tmp_path_factory.mktemp("local"), events, OVERLAY, **HPA_TIMINGS
    )
    try:
        assert isinstance(up, KubernetesPlatform)
        yield up
    finally:
        up.down()


@pytest.fixture(scope="module")
def api(
    platform: KubernetesPlatform, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Clients]:
    clients = clients_for(platform, tmp_path_factory.mktemp("clients"))
    yield clients
    clients.close()


def all_ready(platform: KubernetesPlatform) -> bool:
    return all(c.ready == c.desired for c in platform.components())


def test_the_backup_job_dumps_the_database_onto_its_claim(platform: KubernetesPlatform) -> None:
    """The CronJob's own script (pg_dump | gzip, then the retention sweep) through our kubelet,
    onto the finch-backup claim's directory: a complete plain-SQL dump of Finch's schema."""
    result = platform.run_job(NS, "postgres-backup", timeout=180)
    assert result.succeeded, result
    claim = Path(platform.provider.state()["kubelet_dir"]) / "volumes" / NS / "finch-backup"
    files = sorted(p.name for p in claim.iterdir())
    print(result, files)
    dumps = sorted(claim.glob("backup-*.sql.gz"))
    assert len(dumps) == 1 and files == [dumps[0].name], files  # no `.partial` left behind
    sql = gzip.decompress(dumps[0].read_bytes()).decode()  # checks the gzip CRC too
    print(sql[:300], "...", sql[-300:])
    assert "-- PostgreSQL database dump\n" in sql[:500]
    assert "-- PostgreSQL database dump complete" in sql[-500:]  # pg_dump ran to its end
    assert "CREATE TABLE public.finch_transaction (" in sql  # the app label is `finch`


def test_a_rollout_stays_within_surge_and_unavailability(
    platform: KubernetesPlatform, topology: Topology
) -> None:
    """finch-frontend's strategy, from the manifest: at every look, at most desired + maxSurge
    pods and at least desired - maxUnavailable of them ready; the surge pod is seen."""
    spec = topology.workloads["finch-frontend"]
    assert isinstance(spec.max_surge, int) and isinstance(spec.max_unavailable, int), spec
    desired = component(platform, "finch-frontend").desired
    before = {p.uid for p in pods_of(platform, "finch-frontend")}
    seen: list[tuple[int, int]] = []

    def replaced() -> bool:
        pods = pods_of(platform, "finch-frontend")
        seen.append((len(pods), sum(p.ready for p in pods)))
        fresh = not {p.uid for p in pods} & before
        return fresh and settled(platform, "finch-frontend", desired)

    platform.rollout(NS, "finch-frontend")
    platform.wait_for(replaced, 120, "every frontend pod replaced", interval=0.2)
    print("(pods, ready) seen:", seen)
    assert max(total for total, _ in seen) == desired + spec.max_surge, seen
    assert min(ready for _, ready in seen) >= desired - spec.max_unavailable, seen


@contextlib.contextmanager
def cpu_load(url: str, clients: int = 6) -> Iterator[dict[str, int]]:
    """CPU-heavy GETs to `url` from `clients` threads until the block ends (at most
    LOAD_SECONDS); yields the counts of answered and failed requests."""
    stop = threading.Event()
    counts = {"ok": 0, "failed": 0}
    deadline = time.monotonic() + LOAD_SECONDS

    def client(n: int) -> None:
        i = 0
        while not stop.is_set() and time.monotonic() < deadline:
            i += 1
            try:
                with urllib.request.urlopen(f"{url}?n={n}-{i}", timeout=10) as resp:
                    resp.read()
                counts["ok"] += 1
            except (OSError, http.client.HTTPException):
                counts["failed"] += 1
                stop.wait(0.2)  # an endpoint changing under the proxy: try again shortly

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    try:
        yield counts
    finally:
        stop.set()
        for t in threads:
            t.join(30)


def rescales(platform: KubernetesPlatform, hpa: str, since: float) -> list[tuple[float, int]]:
    """(time, new size) of the HPA's SuccessfulRescale events, oldest first."""
    found = []
    for e in platform.events(since):
        if e.object == f"HorizontalPodAutoscaler/{hpa}" and e.reason == "SuccessfulRescale":
            size = re.match(r"New size: (\d+);", e.message)
            assert size is not None, e
            found.append((e.time, int(size.group(1))))
    return found


def test_the_real_hpa_scales_out_under_cpu_load_and_in_after_stabilisation(
    platform: KubernetesPlatform, api: Clients
) -> None:
    """Requests to the backend Service (through the Service proxy, no ingress rate limit) burn
    CPU in gunicorn's real processes; metrics-server reads it from our kubelet and the real HPA
    adds pods. Once the load stops it returns to minReplicas, and no sooner than the downscale
    stabilisation window after its last scale-out (horizontal.go, stabilizeRecommendation:
    that scale-out recorded a recommendation above the smaller size)."""
    window = HPA_TIMINGS["hpaDownscaleStabilization"]

    def backend_hpa() -> HpaStatus:
        return next(h for h in platform.hpas() if h.target == "finch-backend")

    hpa = backend_hpa()
    service = api.core.read_namespaced_service("finch-backend", NS).spec
    url = f"http://{service.cluster_ip}:{service.ports[0].port}/api/compute"
    since = time.time() - 1
    measured: list[dict[str, float]] = []

    def scaled_out() -> HpaStatus | None:
        now = backend_hpa()
        measured.append(dict(now.utilization))
        return now if now.desired > now.min_replicas else None

    with cpu_load(url) as served:
        out = platform.wait_for(scaled_out, 240, "the HPA to scale finch-backend out")
    print(f"scaled out to {out.desired}; requests {served}; utilisation seen {measured}")
    assert served["ok"] > 0
    assert max(m.get("cpu", 0.0) for m in measured) > out.targets["cpu"], measured
    platform.wait_for(
        lambda: (
            backend_hpa().desired == hpa.min_replicas
            and settled(platform, "finch-backend", hpa.min_replicas)
        ),
        300,
        "the HPA to scale finch-backend back in",
    )
    history = rescales(platform, hpa.name, since)
    print("rescales (time, size):", history, "last status:", backend_hpa())
    outs = [i for i, (_, size) in enumerate(history) if size > hpa.min_replicas]
    assert outs, history
    last_out = outs[-1]
    scale_ins = history[last_out + 1 :]
    assert scale_ins and scale_ins[-1][1] == hpa.min_replicas, history
    # Event times are whole seconds: allow one.
    assert scale_ins[0][0] - history[last_out][0] >= window - 1, history


def worker_budget_allows(api: Clients, allowed: int) -> bool:
    pdb = api.policy.read_namespaced_pod_disruption_budget("finch-worker", NS)
    return bool(pdb.status.disruptions_allowed == allowed)


def test_a_drain_is_refused_by_the_budget_then_moves_the_pod(
    platform: KubernetesPlatform, api: Clients, topology: Topology
) -> None:
    """finch-worker at 2 replicas under its PDB (maxUnavailable 1). With every node cordoned,
    one worker deleted leaves its replacement Pending: the eviction API refuses the other, and
    the drain names the budget. Once nodes are schedulable again the replacement starts, the
    budget allows one disruption, and the same drain moves the worker off its node."""
    pdb = topology.pdbs["finch-worker"]
    replicas = 2
    assert pdb.max_unavailable == 1, pdb
    before = component(platform, "finch-worker").desired
    platform.scale(NS, "finch-worker", replicas)
    platform.wait_for(lambda: settled(platform, "finch-worker", replicas), 120, "2 ready workers")
    # Drain the node of a worker that shares it with no StatefulSet pod, if one does not:
    # evicting PostgreSQL or Redis would only add churn to what is tested.
    stateful = {p.node for p in platform.pods() if p.owner_kind == "StatefulSet"}
    kept, gone = sorted(pods_of(platform, "finch-worker"), key=lambda p: p.node in stateful)
    node = kept.node
    assert node is not None
    nodes = [n.name for n in platform.nodes()]
    try:
        for name in nodes:
            drain.cordon(api, name)
        platform.delete_pod(NS, gone.name, grace_period=0)
        platform.wait_for(
            lambda: worker_budget_allows(api, 0), 60, "the budget to count the missing worker"
        )
        with pytest.raises(PlatformError) as caught:
            platform.drain_node(node, timeout=REFUSED_AFTER)
        print(caught.value)
        assert (
            f"cannot evict {NS}/{kept.name} after {REFUSED_AFTER}s: PodDisruptionBudget "
            f"finch-worker allows 0 disruption(s): {replicas - 1} healthy of {replicas} "
            f"expected, needs {replicas - pdb.max_unavailable}"
        ) in str(caught.value)
        assert [p.uid for p in pods_of(platform, "finch-worker") if p.name == kept.name] == [
            kept.uid
        ]
        for name in nodes:
            if name != node:
                platform.uncordon_node(name)
        platform.drain_node(node, timeout=180)
        platform.wait_for(
            lambda: (
                settled(platform, "finch-worker", replicas)
                and all(p.node != node for p in pods_of(platform, "finch-worker"))
            ),
            120,
            f"both workers ready off {node}",
        )
    finally:
        for name in nodes:
            platform.uncordon_node(name)
    platform.scale(NS, "finch-worker", before)
    platform.wait_for(lambda: all_ready(platform), 180, "every workload ready again")


def move_onto(platform: KubernetesPlatform, api: Clients, workload: str, node: str) -> None:
    """Make a pod of `workload` run on `node`: its replacement may go nowhere else."""
    others = [n.name for n in platform.nodes() if n.name != node]
    victim = pods_of(platform, workload)[0]
    desired = component(platform, workload).desired
    try:
        for name in others:
            drain.cordon(api, name)
        platform.delete_pod(NS, victim.name, grace_period=0)
        platform.wait_for(
            lambda: (
                settled(platform, workload, desired)
                and any(p.node == node for p in pods_of(platform, workload))
            ),
            120,
            f"{workload} running on {node}",
        )
    finally:
        for name in others:
            platform.uncordon_node(name)


def evictions(platform: KubernetesPlatform, since: float) -> set[str]:
    """The pods the taint-eviction controller marked for deletion."""
    events: list[EventRecord] = platform.events(since)
    return {e.object.removeprefix("Pod/") for e in events if e.reason == "TaintManagerEviction"}


def test_a_node_failure_taints_evicts_and_reschedules(
    platform: KubernetesPlatform, api: Clients
) -> None:
    """The node running PostgreSQL stops (our kubelet stops heartbeating it and kills its
    processes). The node-lifecycle controller marks it NotReady and taints it unreachable; once
    the toleration is over the taint-eviction controller evicts its pods: the Deployments' are
    recreated on other nodes, the StatefulSet's stays Terminating (no kubelet confirms its end
    and its name is taken) until the node returns."""
    postgres = pods_of(platform, "finch-postgres")[0]
    node = postgres.node
    assert node is not None
    if not [p for p in platform.pods() if p.node == node and p.owner_kind == "Deployment"]:
        move_onto(platform, api, "finch-frontend", node)
    on_node = [p for p in platform.pods() if p.node == node and not p.deleting]
    moved = {p.name: p.owner for p in on_node if p.owner_kind == "Deployment"}
    print(f"failing {node}, running {[p.name for p in on_node]}")
    since = time.time() - 1
    platform.fail_node(node)

    def state() -> tuple[bool, tuple[str, ...]]:
        n = next(n for n in platform.nodes() if n.name == node)
        return n.ready, n.taints

    unreachable = {
        "node.kubernetes.io/unreachable:NoSchedule",
        "node.kubernetes.io/unreachable:NoExecute",
    }
    platform.wait_for(
        lambda: not state()[0] and unreachable <= set(state()[1]), 120, f"{node} tainted"
    )
    print(f"{node}: taints {state()[1]}")

    def replaced() -> bool:
        live = [p for p in platform.pods() if not p.deleting and p.name not in moved]
        return all(
            any(p.owner == owner and p.node not in (None, node) for p in live)
            for owner in moved.values()
        )

    platform.wait_for(replaced, 180, "the Deployment pods recreated on other nodes")
    platform.wait_for(
        lambda: set(moved) | {postgres.name} <= evictions(platform, since),
        60,
        "the taint-eviction controller's events",
    )
    stuck: list[PodState] = [p for p in platform.pods() if p.owner == "finch-postgres"]
    print("PostgreSQL while its node is down:", stuck)
    assert [(p.uid, p.node, p.deleting) for p in stuck] == [(postgres.uid, node, True)], stuck
    platform.recover_node(node)
    platform.wait_for(lambda: state() == (True, ()), 90, f"{node} Ready and untainted")
    platform.wait_for(
        lambda: any(p.ready and p.uid != postgres.uid for p in pods_of(platform, "finch-postgres")),
        180,
        "PostgreSQL recreated once its node returned",
    )
    platform.wait_for(lambda: all_ready(platform), 240, "every workload ready again")
    platform.wait_for(
        lambda: not set(moved) & {p.name for p in platform.pods()}, 60, "the evicted pods gone"
    )
