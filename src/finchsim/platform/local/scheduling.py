"""Where kube-scheduler's default profile would bind a pod, decided by requests alone.

Checked against kubernetes/kubernetes pkg/scheduler: apis/config/v1/default_plugins.go (plugins
and weights), framework/plugins/nodeunschedulable, tainttoleration, noderesources (fit.go,
least_allocated.go, balanced_allocation.go), podtopologyspread/scoring.go (system default
constraints) and framework/types.go (FitError, the Pending message).

Filters run in profile order and a node's first failing filter is its reason:
  NodeUnschedulable   a cordoned node: "node(s) were unschedulable"
  TaintToleration     a NotReady node carries node.kubernetes.io/not-ready:NoSchedule:
                      "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
  NodeResourcesFit    pods on the node + 1 <= 110, and for cpu and memory: bound requests plus
                      this pod's <= allocatable (a zero request always fits): "Too many pods",
                      "Insufficient cpu", "Insufficient memory" (both when both)
Scores, 0-100 each, weighted and summed:
  NodeResourcesFit, LeastAllocated (weight 1): mean over cpu and memory of
      (allocatable - requested) * 100 // allocatable, requests counting 100m and 200 MiB for a
      container without one (the scheduler's "non-zero" requests)
  NodeResourcesBalancedAllocation (weight 1): int((1 - |cpu share - memory share| / 2) * 100),
      skipped for a pod requesting nothing
  PodTopologySpread with the system default constraints (weight 2): kubernetes.io/hostname
      maxSkew 3 and topology.kubernetes.io/zone maxSkew 5, ScheduleAnyway, counting pods of the
      same workload (the default selector comes from the Services/ReplicaSets/StatefulSets that
      select the pod; here that is the workload)
TaintToleration, NodeAffinity, InterPodAffinity and ImageLocality score every node alike for
these pods, so they are left out. Ties go to the smallest node name where kube-scheduler picks at
random, so results are deterministic. Preemption is not emulated, so the Pending message stops
before kube-scheduler's "preemption: ..." sentence."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from finchsim.platform.base import NodeState
from finchsim.platform.topology import Container, Workload

MAX_PODS_PER_NODE = 110  # the kubelet's default --max-pods
DEFAULT_CPU_REQUEST_M = 100  # what scoring counts for a container without a cpu request
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024  # ... and without a memory request
HOSTNAME_LABEL = "kubernetes.io/hostname"
ZONE_LABEL = "topology.kubernetes.io/zone"
SPREAD_CONSTRAINTS = ((HOSTNAME_LABEL, 3), (ZONE_LABEL, 5))  # (topology key, maxSkew)
WEIGHT_FIT, WEIGHT_BALANCED, WEIGHT_SPREAD = 1, 1, 2
NOT_READY_TAINT = "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"


@dataclass(frozen=True)
class PodToPlace:
    """A pod as the scheduler sees it: its workload and its effective requests.

    `cpu_m`/`memory` (millicores, bytes) are what filtering checks; `score_cpu_m`/`score_memory`
    the same with per-container defaults for missing requests, which LeastAllocated scores."""

    name: str
    workload: str  # pods of one workload are spread apart; "" = not spread
    cpu_m: int
    memory: int
    score_cpu_m: int
    score_memory: int

    @classmethod
    def of(cls, workload: Workload, name: str) -> PodToPlace:
        """A replica of `workload`: requests are max(sum of containers, largest init container)."""

        def total(containers: Sequence[Container], field: str, default: int) -> int:
            values = [getattr(c.resources, field) or default for c in containers]
            return sum(values)

        def effective(field: str, default: int) -> int:
            inits = [total([c], field, default) for c in workload.init_containers]
            return max([total(workload.containers, field, default), *inits])

        return cls(
            name,
            workload.name,
            effective("cpu_request_m", 0),
            effective("memory_request", 0),
            effective("cpu_request_m", DEFAULT_CPU_REQUEST_M),
            effective("memory_request", DEFAULT_MEMORY_REQUEST),
        )

    @classmethod
    def plain(cls, name: str, workload: str, cpu_m: int, memory: int) -> PodToPlace:
        """A single-container pod with these requests (0 = none)."""
        return cls(
            name,
            workload,
            cpu_m,
            memory,
            cpu_m or DEFAULT_CPU_REQUEST_M,
            memory or DEFAULT_MEMORY_REQUEST,
        )


@dataclass(frozen=True)
class Placement:
    pod: PodToPlace
    node: str


@dataclass(frozen=True)
class NodeScore:
    node: str
    fit: int
    balanced: int
    spread: int  # normalised 0-100

    @property
    def total(self) -> int:
        return WEIGHT_FIT * self.fit + WEIGHT_BALANCED * self.balanced + WEIGHT_SPREAD * self.spread


@dataclass(frozen=True)
class ScheduleResult:
    """The node chosen (None: the pod stays Pending), the message and every feasible score."""

    pod: str
    node: str | None
    message: str
    scores: tuple[NodeScore, ...] = ()


@dataclass(frozen=True)
class BatchResult:
    placements: tuple[Placement, ...]  # the given ones followed by the new ones
    pending: dict[str, str]  # pod name -> FailedScheduling message


def schedule(
    pod: PodToPlace, nodes: Sequence[NodeState], placements: Sequence[Placement]
) -> ScheduleResult:
    """One scheduling cycle for one pod.

    Inputs: the pod, every node, and the pods already bound (to any node). Output: the chosen
    node and the scores of every feasible node, or node None with kube-scheduler's message, e.g.
    "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu."."""
    on_node: dict[str, list[PodToPlace]] = {n.name: [] for n in nodes}
    for placed in placements:
        on_node.setdefault(placed.node, []).append(placed.pod)
    reasons: Counter[str] = Counter()
    feasible = []
    for node in nodes:
        failed = filter_node(pod, node, on_node[node.name])
        reasons.update(failed)
        if not failed:
            feasible.append(node)
    if not feasible:
        histogram = sorted(f"{count} {reason}" for reason, count in reasons.items())
        return ScheduleResult(
            pod.name, None, f"0/{len(nodes)} nodes are available: {', '.join(histogram)}."
        )
    scores = score_nodes(pod, feasible, nodes, on_node)
    best = min(scores, key=lambda s: (-s.total, s.node))
    return ScheduleResult(
        pod.name, best.node, f"Successfully assigned {pod.name} to {best.node}", tuple(scores)
    )


def place(
    pod: PodToPlace, nodes: Sequence[NodeState], placements: Sequence[Placement]
) -> str | None:
    """The node `pod` is bound to, or None when it stays Pending (see `schedule`)."""
    return schedule(pod, nodes, placements).node


def place_batch(
    pods: Sequence[PodToPlace], nodes: Sequence[NodeState], placements: Sequence[Placement] = ()
) -> BatchResult:
    """Schedule pods one after another, each seeing the ones bound before it (the scheduler's
    queue order is the caller's order). Output: all placements and the pods left Pending."""
    bound = list(placements)
    pending: dict[str, str] = {}
    for pod in pods:
        result = schedule(pod, nodes, bound)
        if result.node is None:
            pending[pod.name] = result.message
        else:
            bound.append(Placement(pod, result.node))
    return BatchResult(tuple(bound), pending)


def filter_node(pod: PodToPlace, node: NodeState, bound: Sequence[PodToPlace]) -> list[str]:
    """Why `pod` cannot go on `node` (empty list: it can), stopping at the first failing plugin."""
    if not node.schedulable:
        return ["node(s) were unschedulable"]
    if not node.ready:
        return [NOT_READY_TAINT]
    if len(bound) + 1 > MAX_PODS_PER_NODE:
        return ["Too many pods"]
    reasons = []
    if pod.cpu_m > 0 and pod.cpu_m > node.cpu_allocatable_m - sum(p.cpu_m for p in bound):
        reasons.append("Insufficient cpu")
    free_memory = node.memory_allocatable_bytes - sum(p.memory for p in bound)
    if pod.memory > 0 and pod.memory > free_memory:
        reasons.append("Insufficient memory")
    return reasons


def score_nodes(
    pod: PodToPlace,
    feasible: Sequence[NodeState],
    nodes: Sequence[NodeState],
    on_node: dict[str, list[PodToPlace]],
) -> list[NodeScore]:
    """The weighted plugin scores of each feasible node; `nodes` are all nodes (spreading counts
    replicas on every node, feasible or not) and `on_node` the pods bound to each."""
    spread = _spread_scores(pod, feasible, nodes, on_node)
    result = []
    for node in feasible:
        bound = on_node[node.name]
        alloc = (node.cpu_allocatable_m, node.memory_allocatable_bytes)
        nonzero = (
            pod.score_cpu_m + sum(p.score_cpu_m for p in bound),
            pod.score_memory + sum(p.score_memory for p in bound),
        )
        actual = (
            pod.cpu_m + sum(p.cpu_m for p in bound),
            pod.memory + sum(p.memory for p in bound),
        )
        balanced = 0 if pod.cpu_m == 0 and pod.memory == 0 else _balanced(actual, alloc)
        result.append(
            NodeScore(
                node.name, _least_allocated(nonzero, alloc), balanced, spread.get(node.name, 0)
            )
        )
    return result


def _least_allocated(requested: tuple[int, int], allocatable: tuple[int, int]) -> int:
    scores = [
        0 if req > alloc else (alloc - req) * 100 // alloc
        for req, alloc in zip(requested, allocatable, strict=True)
        if alloc > 0
    ]
    return sum(scores) // len(scores) if scores else 0


def _balanced(requested: tuple[int, int], allocatable: tuple[int, int]) -> int:
    shares = [
        min(req / alloc, 1.0)
        for req, alloc in zip(requested, allocatable, strict=True)
        if alloc > 0
    ]
    std = abs(shares[0] - shares[1]) / 2 if len(shares) == 2 else 0.0
    return int((1 - std) * 100)


def _spread_scores(
    pod: PodToPlace,
    feasible: Sequence[NodeState],
    nodes: Sequence[NodeState],
    on_node: dict[str, list[PodToPlace]],
) -> dict[str, int]:
    """PodTopologySpread's Score + NormalizeScore: fewer replicas nearby → higher score."""
    if not pod.workload:
        return {}
    mine = {n.name: sum(p.workload == pod.workload for p in on_node[n.name]) for n in nodes}
    raw: dict[str, int] = {}
    weights, domains = {}, {}
    for key, _ in SPREAD_CONSTRAINTS:
        # the domains are the feasible nodes' values, a missing label counting as "" (a Go map
        # lookup); replicas are counted on every node, feasible or not
        values = {_label(n, key) for n in feasible}
        if key != HOSTNAME_LABEL:
            domains[key] = {
                v: sum(mine[n.name] for n in nodes if _label(n, key) == v) for v in values
            }
        weights[key] = math.log(len(values) + 2)
    for node in feasible:
        score = 0.0
        for key, max_skew in SPREAD_CONSTRAINTS:
            if key != HOSTNAME_LABEL and key not in node.labels:
                continue  # a node without the zone label gets no zone term
            count = mine[node.name] if key == HOSTNAME_LABEL else domains[key][node.labels[key]]
            score += count * weights[key] + (max_skew - 1)
        raw[node.name] = math.floor(score + 0.5)  # Go's math.Round: halves away from zero
    top, bottom = max(raw.values()), min(raw.values())
    if top == 0:
        return dict.fromkeys(raw, 100)
    return {name: 100 * (top + bottom - s) // top for name, s in raw.items()}


def _label(node: NodeState, key: str) -> str:
    if key == HOSTNAME_LABEL:  # the kubelet always sets it, to the node name by default
        return node.labels.get(key, node.name)
    return node.labels.get(key, "")
