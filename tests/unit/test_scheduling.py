"""Placement like kube-scheduler's default profile, by requests.

Expected scores are computed by hand from kubernetes/kubernetes pkg/scheduler/framework/plugins
(noderesources least_allocated.go and balanced_allocation.go, podtopologyspread/scoring.go) and
the messages from the plugins' error reasons and framework FitError."""

from __future__ import annotations

import itertools

import pytest

from finchsim.platform.base import NodeState
from finchsim.platform.local.scheduling import (
    ZONE_LABEL,
    NodeScore,
    Placement,
    PodToPlace,
    place,
    place_batch,
    schedule,
)
from finchsim.platform.topology import Container, Resources, Workload

Mi, Gi = 1024**2, 1024**3


def node(
    name: str,
    cpu: int = 2000,
    memory: int = 4 * Gi,
    *,
    zone: str | None = None,
    ready: bool = True,
    schedulable: bool = True,
) -> NodeState:
    labels = {} if zone is None else {ZONE_LABEL: zone}
    return NodeState(name, ready, schedulable, cpu, memory, labels)


def pod(name: str, cpu: int, memory: int, workload: str = "web") -> PodToPlace:
    return PodToPlace.plain(name, workload, cpu, memory)


def filler(on: str, cpu: int, memory: int) -> Placement:
    """Another workload's pod already bound to `on`."""
    return Placement(pod(f"other-{on}-{cpu}-{memory}", cpu, memory, "other"), on)


# (id, pod cpu m, pod memory, node, already bound there, expected node or Pending message)
FIT = [
    ("fits-exactly", 1000, 2 * Gi, node("n1"), [filler("n1", 1000, 2 * Gi)], "n1"),
    (
        "one-millicore-too-many",
        1001,
        Gi,
        node("n1"),
        [filler("n1", 1000, Gi)],
        "0/1 nodes are available: 1 Insufficient cpu.",
    ),
    (
        "one-byte-too-many",
        100,
        2 * Gi + 1,
        node("n1"),
        [filler("n1", 100, 2 * Gi)],
        "0/1 nodes are available: 1 Insufficient memory.",
    ),
    # NodeResourcesFit reports every resource that does not fit
    (
        "both-short",
        3000,
        5 * Gi,
        node("n1"),
        [],
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.",
    ),
    # a zero request always passes the check, even on an overcommitted node (fit.go checks
    # `request > 0 && request > free`)
    ("zero-request-fits-full-node", 0, 0, node("n1"), [filler("n1", 2500, 5 * Gi)], "n1"),
    # NodeUnschedulable runs before NodeResourcesFit: one reason per node
    (
        "cordoned",
        100,
        Mi,
        node("n1", schedulable=False),
        [],
        "0/1 nodes are available: 1 node(s) were unschedulable.",
    ),
    (
        "not-ready",
        100,
        Mi,
        node("n1", ready=False),
        [],
        "0/1 nodes are available: 1 node(s) had untolerated taint "
        "{node.kubernetes.io/not-ready: }.",
    ),
]


@pytest.mark.parametrize(
    ("cpu", "memory", "the_node", "bound", "expected"),
    [c[1:] for c in FIT],
    ids=[c[0] for c in FIT],
)
def test_fit(
    cpu: int, memory: int, the_node: NodeState, bound: list[Placement], expected: str
) -> None:
    result = schedule(pod("web-0", cpu, memory), [the_node], bound)
    assert (result.node or result.message) == expected


def test_not_ready_and_cordoned_nodes_are_skipped() -> None:
    nodes = [node("a", schedulable=False), node("b", ready=False), node("c", cpu=500)]
    assert place(pod("web-0", 400, Mi), nodes, []) == "c"
    result = schedule(pod("web-1", 600, Mi), nodes, [])
    # the histogram is "<count> <reason>" sorted as strings, like FitError.Error()
    assert (result.node, result.message) == (
        None,
        (
            "0/3 nodes are available: 1 Insufficient cpu, "
            "1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, "
            "1 node(s) were unschedulable."
        ),
    )


def test_pending_histogram_sorts_as_strings() -> None:
    nodes = [node(f"m{i:02}", memory=Mi) for i in range(10)] + [
        node("c1", cpu=100),
        node("c2", cpu=100),
    ]
    message = schedule(pod("web-0", 200, 2 * Mi), nodes, []).message
    # Go's sort.Strings on "<count> <reason>": "10 ..." sorts before "2 ..."
    assert message == "0/12 nodes are available: 10 Insufficient memory, 2 Insufficient cpu."


def test_too_many_pods() -> None:
    full = [Placement(pod(f"p{i}", 0, 0, "other"), "n1") for i in range(110)]
    assert schedule(pod("web-0", 0, 0), [node("n1")], full).message == (
        "0/1 nodes are available: 1 Too many pods."
    )


# Hand-computed scores, pod 500m / 1Gi on empty nodes of 2000m / 4Gi (and n1 of 8000m / 16Gi):
#   LeastAllocated  cpu (2000-500)*100//2000 = 75, memory 75 -> 75; n1: 7500*100//8000 = 93
#   Balanced        shares 0.25 / 0.25 -> (1 - 0)*100 = 100
#   Spread          raw = round(count*ln(nodes+2) + maxSkew-1) = 2 everywhere -> 100 each
def test_scores_are_the_plugins_formulas() -> None:
    nodes = [node("n1", 8000, 16 * Gi), node("n2"), node("n3")]
    first = schedule(pod("web-0", 500, Gi), nodes, [])
    assert first.scores == (
        NodeScore("n1", 93, 100, 100),
        NodeScore("n2", 75, 100, 100),
        NodeScore("n3", 75, 100, 100),
    )
    assert [s.total for s in first.scores] == [393, 375, 375] and first.node == "n1"
    # after web-0 on n1: n1 raw spread round(1*ln 5 + 2) = 4, others 2; normalised
    # 100*(max+min-raw)//max = 50 for n1 and 100 for the others; n1 fit 7000*100//8000 = 87
    second = schedule(pod("web-1", 500, Gi), nodes, [Placement(first_pod(), "n1")])
    assert second.scores[0] == NodeScore("n1", 87, 100, 50)
    assert (second.node, [s.total for s in second.scores]) == ("n2", [287, 375, 375])


def first_pod() -> PodToPlace:
    return pod("web-0", 500, Gi)


@pytest.mark.parametrize(
    ("bound", "fit", "balanced"),
    [
        # a cpu-only pod on a: actual shares cpu 0.75 / memory 0.25 -> (1 - 0.5/2)*100 = 75;
        # LeastAllocated counts its missing memory request as 200Mi: cpu 25, memory
        # (4096-1224)*100//4096 = 70 -> 47
        (filler("a", 1000, 0), 47, 75),
        # a memory-only pod: shares 0.25 / 0.5 -> int(87.5) = 87; its missing cpu request counts
        # 100m for LeastAllocated: cpu (2000-600)*100//2000 = 70, memory 50 -> 60
        (filler("a", 0, Gi), 60, 87),
    ],
)
def test_node_resource_scores(bound: Placement, fit: int, balanced: int) -> None:
    result = schedule(pod("x", 500, Gi, "x"), [node("a"), node("b")], [bound])
    assert [(s.node, s.fit, s.balanced) for s in result.scores] == [
        ("a", fit, balanced),
        ("b", 75, 100),
    ]
    assert result.node == "b"


# (id, nodes, replicas, expected nodes in placement order)
SPREAD = [
    ("three-over-three", [node("n1"), node("n2"), node("n3")], 3, ["n1", "n2", "n3"]),
    (
        "six-over-three",
        [node("n1"), node("n2"), node("n3")],
        6,
        ["n1", "n2", "n3", "n1", "n2", "n3"],
    ),
    # spreading (weight 2) beats the big node's free capacity (LeastAllocated alone would put
    # all three on n1: 93, 87, 81 against 75)
    (
        "spread-beats-capacity",
        [node("n1", 8000, 16 * Gi), node("n2"), node("n3")],
        3,
        ["n1", "n2", "n3"],
    ),
    # zones: the second replica avoids zone a (a2 empty but in a's domain), the third too
    (
        "zones",
        [node("a1", zone="a"), node("a2", zone="a"), node("b1", zone="b"), node("c1", zone="c")],
        3,
        ["a1", "b1", "c1"],
    ),
    # a replica that does not fit anywhere stays Pending, the others are placed
    (
        "fourth-pending",
        [node("n1", cpu=500), node("n2", cpu=500), node("n3", cpu=500)],
        4,
        ["n1", "n2", "n3"],
    ),
]


@pytest.mark.parametrize(
    ("nodes", "replicas", "expected"), [c[1:] for c in SPREAD], ids=[c[0] for c in SPREAD]
)
def test_spreading(nodes: list[NodeState], replicas: int, expected: list[str]) -> None:
    pods = [pod(f"web-{i}", 500, Gi) for i in range(replicas)]
    result = place_batch(pods, nodes)
    assert [p.node for p in result.placements] == expected
    assert list(result.pending) == [f"web-{i}" for i in range(len(expected), replicas)]


def test_pending_reason_in_batch() -> None:
    result = place_batch([pod(f"web-{i}", 500, Gi) for i in range(2)], [node("n1", cpu=500)])
    assert result.pending == {"web-1": "0/1 nodes are available: 1 Insufficient cpu."}


def test_replicas_on_unschedulable_nodes_still_count_for_zones() -> None:
    # PodTopologySpread counts matching pods on every node; a1 is cordoned but hosts a replica
    nodes = [node("a1", zone="a", schedulable=False), node("a2", zone="a"), node("b1", zone="b")]
    assert place(pod("web-1", 500, Gi), nodes, [Placement(first_pod(), "a1")]) == "b1"


def test_deterministic_whatever_the_node_order() -> None:
    nodes = [node("n3"), node("n1"), node("n2")]
    pods = [pod(f"web-{i}", 500, Gi) for i in range(3)]
    outcomes = {
        tuple(p.node for p in place_batch(pods, list(order)).placements)
        for order in itertools.permutations(nodes)
    }
    assert outcomes == {("n1", "n2", "n3")}  # ties go to the smallest name


def test_pod_requests_from_a_workload() -> None:
    def container(name: str, cpu: int, memory: int) -> Container:
        return Container(name, "img", (), (), {}, {}, Resources(cpu, 0, memory, 0))

    web = Workload(
        "Deployment",
        "finch",
        "backend",
        3,
        {"app": "backend"},
        (container("app", 250, 512 * Mi), container("sidecar", 0, 0)),
        (container("migrate", 500, 128 * Mi),),
    )
    got = PodToPlace.of(web, "backend-0")
    # filtering: max(sum of containers, largest init container) per resource
    assert (got.cpu_m, got.memory) == (500, 512 * Mi)
    # scoring: the sidecar without requests counts 100m / 200Mi
    assert (got.score_cpu_m, got.score_memory) == (500, 712 * Mi)
    assert got.workload == "backend"
