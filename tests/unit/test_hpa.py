"""The HPA emulation against the rules of the Kubernetes docs and controller code.

"Docs" below is https://kubernetes.io/docs/concepts/workloads/autoscaling/horizontal-pod-autoscale/
("Algorithm details", "Configurable scaling behavior"); "code" is kubernetes/kubernetes
pkg/controller/podautoscaler (replica_calculator.go, horizontal.go). Every vector would fail on
the naive `ceil(current * usage / target)` applied to all pods without tolerance or memory."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from finchsim.errors import InputError
from finchsim.models.hpa import (
    ControllerSettings,
    HpaState,
    PodSample,
    compute_metric,
    parse_behavior,
    sync,
)
from finchsim.models.hpa_model import Hpa, HpaMetric

OLD = -1000.0  # a start time well past the 5 min CPU initialisation period at now=0


def pod(
    name: str,
    cpu: int | None = None,
    *,
    req: int = 100,
    ready: bool = True,
    start: float = OLD,
    transition: float | None = None,
    memory: int | None = None,
    mem_req: int = 100,
    phase: str = "Running",
    deleting: bool = False,
) -> PodSample:
    """A pod; usage None = no sample. Requests/usages are in small units to keep % readable."""
    usage = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    return PodSample(
        name,
        ready,
        start,
        start + 10 if transition is None else transition,
        usage,
        {"cpu": req, "memory": mem_req},
        phase=phase,
        deleting=deleting,
    )


def cpu_pods(*usages: int | None, req: int = 100) -> list[PodSample]:
    return [pod(f"p{i}", u, req=req) for i, u in enumerate(usages)]


# (id, target %, pods, current replicas, expected proposal, expected utilization %)
BASIC = [
    # docs: "current metric value is 200m, and the desired value is 100m ... doubled"
    ("doubles-at-200pct", 100, cpu_pods(200), 1, 2, 200),
    # docs: "If the current value is instead 50m, you'll halve the number of replicas"
    ("halves-at-50pct", 100, cpu_pods(50, 50, 50, 50), 4, 2, 50),
    # docs: "skips any scaling action if the ratio is sufficiently close to 1.0 (0.1 by default)"
    ("within-tolerance-108", 100, cpu_pods(108, 108, 108, 108), 4, 4, 108),
    # code (>= 1.33): isWithin is 1-0.1 <= r <= 1+0.1, so exactly 110 % stays (abs(1-r) > 0.1
    # in floating point would scale to 5)
    ("tolerance-edge-110", 100, cpu_pods(110, 110, 110, 110), 4, 4, 110),
    ("tolerance-edge-90", 100, cpu_pods(90, 90, 90, 90), 4, 4, 90),
    ("just-outside-111", 100, cpu_pods(111, 111, 111, 111), 4, 5, 111),
    # docs: utilization is "a percentage of the equivalent resource request"
    ("percent-of-request", 70, cpu_pods(250, 250, 250, req=250), 3, 5, 100),
    # code: utilization = usage*100 // requests, an integer: 110.1 % truncates to 110, in range
    ("integer-percent", 100, cpu_pods(1101, req=1000), 1, 1, 110),
]


@pytest.mark.parametrize(
    ("target", "pods", "current", "proposal", "util"),
    [case[1:] for case in BASIC],
    ids=[case[0] for case in BASIC],
)
def test_basic_ratio(
    target: int, pods: list[PodSample], current: int, proposal: int, util: int
) -> None:
    result = compute_metric(HpaMetric("cpu", target), current, pods, now=0.0)
    assert (result.proposal, result.utilization) == (proposal, util), result


# (id, metric, target, pods, current, proposal, recomputed utilization or None)
SET_ASIDE = [
    # docs: missing metrics count as 100 % on a scale-down; code: 100 % of the *request*
    # (max(100, target)), so 3 not 2 as "100 % of the 50 % target" would give
    ("missing-on-scale-down", "cpu", 50, cpu_pods(100, 100, 100, None, req=1000), 4, 3, 32),
    # docs: "... and 0% in case of a scale up": 300/400 = 75 % -> 1.5 x 4 pods
    ("missing-on-scale-up", "cpu", 50, cpu_pods(100, 100, 100, None), 4, 6, 75),
    # docs: "If the new ratio reverses the scale direction ... doesn't take any scaling action"
    ("missing-reverses-direction", "cpu", 50, cpu_pods(20, None, None, None), 4, 4, 80),
    # docs: not-yet-ready pods count as 0 % on a scale-up: 200/300 = 66 % of 50 -> ceil(3.96)
    (
        "unready-on-scale-up",
        "cpu",
        50,
        [pod("a", 100), pod("b", 100), pod("c", 0, ready=False)],
        3,
        4,
        66,
    ),
    # docs: unready pods are set aside; on a scale-down they are not added back: 20 % of a
    # 50 % target on the 2 ready pods -> ceil(0.4 * 2) = 1 (not ceil(0.4 * 3 replicas) = 2)
    (
        "unready-on-scale-down",
        "cpu",
        50,
        [pod("a", 20), pod("b", 20), pod("c", 90, ready=False)],
        3,
        1,
        None,
    ),
    # code: the ratio multiplies the pods that have a usable sample, not the spec replicas
    (
        "ready-pods-not-spec-replicas",
        "cpu",
        50,
        [pod("a", 100), pod("b", 100), pod("c", 0, deleting=True)],
        3,
        4,
        None,
    ),
    # docs: readiness is only considered "when scaling on CPU": memory counts the unready pod
    (
        "memory-ignores-readiness",
        "memory",
        50,
        [pod("a", memory=10), pod("b", memory=10), pod("c", memory=90, ready=False)],
        3,
        3,
        None,
    ),
    # code: Pending pods are unready for every resource
    (
        "pending-is-unready",
        "memory",
        50,
        [pod("a", memory=100), pod("b", memory=100), pod("c", memory=0, phase="Pending")],
        3,
        4,
        66,
    ),
    # docs: pods with a deletion timestamp are ignored, failed pods discarded
    (
        "deleting-and-failed-ignored",
        "cpu",
        100,
        [pod("a", 100), pod("b", 100), pod("c", 0, deleting=True), pod("d", 0, phase="Failed")],
        4,
        4,
        None,
    ),
    # docs: CPU initialisation period (5 min): a pod ready for only 5 s is set aside (its
    # metric window started before it was ready), then counted as 0 % on the scale-up
    (
        "init-period-recently-ready",
        "cpu",
        100,
        [pod("a", 200), pod("b", 900, start=-60, transition=-5)],
        2,
        2,
        100,
    ),
    # ... ready for 20 s > the 15 s metric window: its sample counts, 1100/200 = 550 %
    (
        "init-period-ready-long-enough",
        "cpu",
        100,
        [pod("a", 200), pod("b", 900, start=-60, transition=-20)],
        2,
        11,
        None,
    ),
    # docs: initial readiness delay (30 s): unready since 10 s after start = never ready: aside
    (
        "never-ready-after-init",
        "cpu",
        100,
        [pod("a", 200), pod("b", 900, ready=False, start=OLD, transition=OLD + 10)],
        2,
        2,
        100,
    ),
    # ... became unready 200 s after start, i.e. it had been ready: its sample counts
    (
        "unready-after-ready-counts",
        "cpu",
        100,
        [pod("a", 200), pod("b", 900, ready=False, start=OLD, transition=OLD + 200)],
        2,
        11,
        None,
    ),
]


@pytest.mark.parametrize(
    ("resource", "target", "pods", "current", "proposal", "recomputed"),
    [c[1:] for c in SET_ASIDE],
    ids=[c[0] for c in SET_ASIDE],
)
def test_pods_set_aside(
    resource: str,
    target: int,
    pods: list[PodSample],
    current: int,
    proposal: int,
    recomputed: int | None,
) -> None:
    result = compute_metric(HpaMetric(resource, target), current, pods, now=0.0)
    assert result.error is None
    assert (result.proposal, result.recomputed_utilization) == (proposal, recomputed), result


def test_init_periods_are_parameters() -> None:
    pods = [pod("a", 200), pod("b", 900, start=-60, transition=-5)]
    short = ControllerSettings(cpu_initialization_period=30.0)
    assert compute_metric(HpaMetric("cpu", 100), 2, pods, 0.0).proposal == 2
    assert compute_metric(HpaMetric("cpu", 100), 2, pods, 0.0, short).proposal == 11


@pytest.mark.parametrize(
    ("pods", "error"),
    [
        ([], "no pods returned by selector"),
        (cpu_pods(None, None), "did not receive metrics for targeted pods (pods might be unready)"),
        ([PodSample("a", True, OLD, OLD, {"cpu": 5}, {})], "missing request for cpu in pod a"),
    ],
)
def test_metric_errors(pods: list[PodSample], error: str) -> None:
    result = compute_metric(HpaMetric("cpu", 50), 2, pods, 0.0)
    assert (result.proposal, result.error) == (None, error)


def hpa(
    *metrics: tuple[str, int], lo: int = 1, hi: int = 10, behavior: dict[str, Any] | None = None
) -> Hpa:
    return Hpa("web", "web", lo, hi, tuple(HpaMetric(r, t) for r, t in metrics), behavior or {})


def both(n: int, cpu: int, memory: int | None, cpu_req: int | None = 100) -> list[PodSample]:
    reqs = {"memory": 100} if cpu_req is None else {"cpu": cpu_req, "memory": 100}
    usage = {"cpu": cpu} if memory is None else {"cpu": cpu, "memory": memory}
    return [PodSample(f"p{i}", True, OLD, OLD + 10, usage, reqs) for i in range(n)]


# (id, pods, current, final, proposal, limited_by): cpu 100 % and memory 100 %, no behavior
MULTI = [
    # docs: "this calculation is done for each metric, and then the largest ... is chosen"
    ("largest-wins", both(3, cpu=200, memory=100), 3, 6, 6, "DesiredWithinRange"),
    ("largest-wins-other-order", both(3, cpu=100, memory=200), 3, 6, 6, "DesiredWithinRange"),
    # docs: a metric that cannot be computed + a scale-down suggested by the others: skipped
    # (before any stabilisation: nothing is recorded)
    (
        "invalid-blocks-scale-down",
        both(4, cpu=10, memory=20, cpu_req=None),
        4,
        4,
        1,
        "FailedGetResourceMetric",
    ),
    # docs: "the HPA is still capable of scaling up if one or more metrics give" more
    (
        "invalid-allows-scale-up",
        both(2, cpu=10, memory=200, cpu_req=None),
        2,
        4,
        4,
        "DesiredWithinRange",
    ),
]


@pytest.mark.parametrize(
    ("pods", "current", "final", "proposal", "limited_by"),
    [c[1:] for c in MULTI],
    ids=[c[0] for c in MULTI],
)
def test_several_metrics(
    pods: list[PodSample], current: int, final: int, proposal: int, limited_by: str
) -> None:
    decision = sync(hpa(("cpu", 100), ("memory", 100)), HpaState(), current, pods, 0.0)
    assert (decision.final_replicas, decision.proposal, decision.limited_by) == (
        final,
        proposal,
        limited_by,
    ), decision.reason


def run(spec: Hpa, steps: Sequence[tuple[float, int]], start: int) -> list[tuple[int, int]]:
    """Sync at each (time, per-pod cpu %) with as many pods as replicas; (proposal, final)."""
    state, current, seen = HpaState(), start, []
    for now, usage in steps:
        decision = sync(spec, state, current, cpu_pods(*[usage] * current), now)
        seen.append((decision.proposal or 0, decision.final_replicas))
        state, current = decision.state, decision.final_replicas
    return seen


def test_scale_down_stabilization_window() -> None:
    # docs: "uses the highest value from the specified interval" (300 s, no behavior given);
    # the controller also records the replicas it first saw as a recommendation
    steps = [(0, 100), (100, 60), (200, 40), (301, 40), (316, 60), (401, 60)]
    assert run(hpa(("cpu", 100)), steps, start=5) == [
        (5, 5),  # within tolerance
        (3, 5),  # 3 proposed, 5 recommended in the last 300 s
        (2, 5),
        (2, 3),  # the 5s of t=0 left the window (1, 301]; 3 of t=100 is the highest left
        (2, 3),  # 3 pods at 60 % propose 2; 3 of t=100 still within (16, 316]
        (2, 2),  # window (101, 401] holds only 2s
    ]


def test_window_edge_differs_between_legacy_and_behavior() -> None:
    # code: the legacy path keeps a recommendation unless it is *before* now - window, the
    # behavior path only counts it when it is *after*; a 5 exactly 300 s old
    legacy = hpa(("cpu", 100))
    with_behavior = hpa(("cpu", 100), behavior={"scaleUp": {"selectPolicy": "Max"}})
    assert run(legacy, [(0, 100), (300, 40)], start=5) == [(5, 5), (2, 5)]
    assert run(with_behavior, [(0, 100), (300, 40)], start=5) == [(5, 5), (2, 2)]


def test_scale_up_stabilization_takes_the_lowest() -> None:
    # docs behavior field: scale-up stabilisation keeps the lowest recommendation of the window
    spec = hpa(("cpu", 100), behavior={"scaleUp": {"stabilizationWindowSeconds": 30}})
    assert run(spec, [(0, 100), (15, 300), (31, 300)], start=2) == [(2, 2), (6, 2), (6, 6)]


# (id, behavior, final, reason) for 1 pod at 1000 % of a 100 % cpu target, maxReplicas 10
RATE = [
    # docs default behavior: "4 pods or a 100% ... may at most be added every 15 seconds"
    (
        "default-policies",
        {"scaleDown": {"stabilizationWindowSeconds": 300}},
        5,
        "cpu 1000% of 100% target → 10 replicas; limited by policy Pods=4/15s → 5",
    ),
    # code: without `behavior` the legacy limit max(2 x current, 4) applies: 4, not 5
    (
        "no-behavior-legacy",
        None,
        4,
        "cpu 1000% of 100% target → 10 replicas; limited by scale-up limit max(2*1, 4) → 4",
    ),
    # docs: selectPolicy Min picks the policy allowing the smallest change: 100 % of 1 = 2
    (
        "select-min",
        {"scaleUp": {"selectPolicy": "Min"}},
        2,
        "cpu 1000% of 100% target → 10 replicas; limited by policy Percent=100/15s → 2",
    ),
    (
        "select-disabled",
        {"scaleUp": {"selectPolicy": "Disabled"}},
        1,
        "cpu 1000% of 100% target → 10 replicas; limited by selectPolicy=Disabled → 1; no change",
    ),
]


@pytest.mark.parametrize(
    ("behavior", "final", "reason"), [c[1:] for c in RATE], ids=[c[0] for c in RATE]
)
def test_scale_up_rate(behavior: dict[str, Any] | None, final: int, reason: str) -> None:
    decision = sync(hpa(("cpu", 100), behavior=behavior), HpaState(), 1, cpu_pods(1000), 0.0)
    assert (decision.final_replicas, decision.reason) == (final, reason)


def test_policy_period_counts_changes_already_made() -> None:
    # docs: periodSeconds "the length of time in the past for which the policy must hold true"
    spec = hpa(("cpu", 100), behavior={"scaleDown": {"stabilizationWindowSeconds": 300}})
    first = sync(spec, HpaState(), 1, cpu_pods(1000), 0.0)
    assert first.final_replicas == 5
    soon = sync(spec, first.state, 5, cpu_pods(*[1000] * 5), 10.0)
    later = sync(spec, first.state, 5, cpu_pods(*[1000] * 5), 15.0)
    assert (soon.final_replicas, soon.rate_limit, soon.limited_by) == (5, 5, "ScaleUpLimit")
    assert (later.final_replicas, later.rate_limit, later.limited_by) == (10, 10, "TooManyReplicas")


def test_policy_period_adds_up_several_changes() -> None:
    # two scale-ups within one 60 s period both count against "4 pods per 60 s"
    spec = hpa(
        ("cpu", 100),
        behavior={"scaleUp": {"policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}]}},
    )
    assert run(spec, [(0, 300), (20, 300), (40, 300), (61, 300)], start=1) == [
        (3, 3),  # +2
        (9, 5),  # +2 more: 1 replica at the period's start + 4
        (15, 5),  # +4 already made within (-20, 40]
        (15, 7),  # the +2 of t=0 left the period: 3 at its start + 4
    ]


DOWN = {
    "stabilizationWindowSeconds": 0,
    "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 60},
        {"type": "Percent", "value": 10, "periodSeconds": 60},
    ],
}


@pytest.mark.parametrize(
    ("select", "steps"),
    [
        # docs: "80 replicas ... during the first step 8 replicas will be reduced. In the next
        # iteration when the number of replicas is 72, 10% of the pods is 7.2 but the number is
        # rounded up to 8"; within the period nothing more is removed
        ("Max", [(0.0, 80, 72), (30.0, 72, 72), (60.0, 72, 64)]),
        # docs: Min "would select the policy which allows the smallest change"
        ("Min", [(0.0, 80, 76)]),
        # docs: "Setting the value to Disabled completely disables scaling in that direction"
        ("Disabled", [(0.0, 80, 80)]),
    ],
)
def test_scale_down_policies(select: str, steps: list[tuple[float, int, int]]) -> None:
    spec = hpa(("cpu", 100), hi=100, behavior={"scaleDown": {**DOWN, "selectPolicy": select}})
    state = HpaState()
    for now, current, final in steps:
        decision = sync(spec, state, current, cpu_pods(*[12] * current), now)
        assert decision.proposal == (10 if current == 80 else 9)
        assert decision.final_replicas == final, (now, decision.reason)
        state = decision.state


# (id, hpa, current, cpu % per pod, final, limited_by)
BOUNDS = [
    ("clamped-to-max", hpa(("cpu", 100), hi=10), 8, 200, 10, "TooManyReplicas"),
    (
        "clamped-to-min",
        hpa(("cpu", 100), lo=3, behavior={"scaleDown": {"stabilizationWindowSeconds": 0}}),
        4,
        10,
        3,
        "TooFewReplicas",
    ),
    # code: current above max / below min is corrected without looking at metrics
    ("current-above-max", hpa(("cpu", 100), hi=10), 12, 10, 10, "TooManyReplicas"),
    ("current-below-min", hpa(("cpu", 100), lo=3), 2, 300, 3, "TooFewReplicas"),
    # docs "Implicit maintenance-mode deactivation": target at 0 and minReplicas > 0
    ("target-at-zero-disables", hpa(("cpu", 100), lo=1), 0, 300, 0, "ScalingDisabled"),
]


@pytest.mark.parametrize(
    ("spec", "current", "usage", "final", "limited_by"),
    [c[1:] for c in BOUNDS],
    ids=[c[0] for c in BOUNDS],
)
def test_bounds(spec: Hpa, current: int, usage: int, final: int, limited_by: str) -> None:
    decision = sync(spec, HpaState(), current, cpu_pods(*[usage] * max(current, 1)), 0.0)
    assert (decision.final_replicas, decision.limited_by) == (final, limited_by), decision.reason


def test_behavior_tolerance_needs_its_feature_gate() -> None:
    # docs "Tolerance": behavior.scaleUp.tolerance, behind HPAConfigurableTolerance (alpha, off
    # in the pinned 1.34): 105 % is within the default 10 % unless the gate is on
    spec = hpa(("cpu", 100), behavior={"scaleUp": {"tolerance": 0.02}})
    pods = cpu_pods(105, 105, 105, 105)
    gate_on = ControllerSettings(configurable_tolerance=True)
    assert sync(spec, HpaState(), 4, pods, 0.0).final_replicas == 4
    assert sync(spec, HpaState(), 4, pods, 0.0, gate_on).final_replicas == 5


def test_seed_hpa_and_default_metric() -> None:
    # the seed's finch-backend-hpa: 3..10, cpu 70 %, memory 80 %; pods request 250m / 512Mi
    seed = hpa(("cpu", 70), ("memory", 80), lo=3, hi=10)
    pods = [
        PodSample(
            f"b{i}",
            True,
            OLD,
            OLD + 10,
            {"cpu": 250, "memory": 256 << 20},
            {"cpu": 250, "memory": 512 << 20},
        )
        for i in range(3)
    ]
    decision = sync(seed, HpaState(), 3, pods, 0.0)
    assert [m.utilization for m in decision.metrics] == [100, 50]
    assert (decision.proposal, decision.final_replicas) == (5, 5)
    # autoscaling/v2 defaulting: no metrics means cpu at 80 %
    bare = sync(hpa(), HpaState(), 3, pods, 0.0)
    assert [(m.resource, m.target, m.proposal) for m in bare.metrics] == [("cpu", 80, 4)]


def test_decision_carries_inputs_and_logs_as_json() -> None:
    decision = sync(hpa(("cpu", 100)), HpaState(), 1, cpu_pods(200), 42.0)
    record = json.loads(json.dumps(decision.record()))
    assert record["now"] == 42.0 and record["current_replicas"] == 1
    assert record["pods"][0]["usage"] == {"cpu": 200}
    assert record["metrics"][0]["utilization"] == 200
    assert record["state"]["recommendations"] == [[42.0, 1], [42.0, 2]]
    assert decision.rescale and decision.reason == "cpu 200% of 100% target → 2 replicas"


def test_parse_behavior_fills_defaults() -> None:
    behavior = parse_behavior(
        {"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}
    )
    assert behavior is not None
    up, down = behavior.scale_up, behavior.scale_down
    assert (up.stabilization_window_seconds, up.select_policy) == (0, "Max")
    assert [str(p) for p in up.policies] == ["Pods=4/15s", "Percent=100/15s"]
    assert (down.stabilization_window_seconds, down.select_policy) == (300, "Max")
    assert [str(p) for p in down.policies] == ["Pods=1/60s"]
    assert parse_behavior(None) is None and parse_behavior({}) is None


def test_parse_behavior_reports_every_problem() -> None:
    with pytest.raises(InputError) as caught:
        parse_behavior(
            {
                "scaleUp": {
                    "selectPolicy": "Most",
                    "policies": [{"type": "Pod", "value": 0, "periodSeconds": 3600}],
                }
            },
            where="hpa.yaml",
        )
    assert [f"{p.field}: {p.message}" for p in caught.value.problems] == [
        "spec.behavior.scaleUp.selectPolicy: must be Max, Min or Disabled",
        "spec.behavior.scaleUp.policies[0].type: must be Pods or Percent",
        "spec.behavior.scaleUp.policies[0].value: must be > 0",
        "spec.behavior.scaleUp.policies[0].periodSeconds: must be 1..1800",
    ]
