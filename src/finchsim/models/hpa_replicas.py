"""One metric of an HPA: the replicas it asks for (replica_calculator.go, GetResourceReplicas).

Groups the pods (ready, not yet ready, without a sample, ignored), computes the utilization as an
integer % of requests, applies the tolerance and, when pods are missing or not ready, recomputes
with them filled in the way the controller code does (which differs from the docs: a pod without
a sample counts as using max(100 %, target) of its request on a scale-down)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

from finchsim.models.hpa_model import (
    DEFAULT_SETTINGS,
    ControllerSettings,
    HpaMetric,
    MetricResult,
    PodSample,
)


def compute_metric(
    metric: HpaMetric,
    current_replicas: int,
    pods: Sequence[PodSample],
    now: float,
    settings: ControllerSettings = DEFAULT_SETTINGS,
    tolerances: tuple[float, float] | None = None,
) -> MetricResult:
    """The replicas one Resource/Utilization metric asks for (GetResourceReplicas).

    Inputs: the metric, the target's spec replicas, every pod its selector returns, the time and
    the (scale-down, scale-up) tolerances. Output: a MetricResult with the proposal, or `error`
    set when the metric cannot be computed (no pods, no usable sample, a missing request)."""
    res, target = metric.resource, metric.utilization
    down_tol, up_tol = tolerances or (settings.tolerance, settings.tolerance)

    def within(ratio: float) -> bool:
        return 1.0 - down_tol <= ratio <= 1.0 + up_tol

    if not pods:
        return MetricResult(res, target, error="no pods returned by selector")
    groups: dict[str, list[str]] = {"ready": [], "unready": [], "missing": [], "ignored": []}
    for pod in pods:
        groups[_group(pod, res, now, settings)].append(pod.name)
    ready = set(groups["ready"])
    usage = {p.name: p.usage[res] for p in pods if p.name in ready}
    base = MetricResult(
        res,
        target,
        ready_pods=len(usage),
        unready_pods=tuple(groups["unready"]),
        missing_pods=tuple(groups["missing"]),
        ignored_pods=tuple(groups["ignored"]),
    )
    if not usage:
        return replace(
            base, error="did not receive metrics for targeted pods (pods might be unready)"
        )
    lacking = [p.name for p in pods if res not in p.requests]
    if lacking:  # the controller reads the requests of every pod the selector returns
        return replace(base, error=f"missing request for {res} in pod {lacking[0]}")
    requests = {p.name: p.requests[res] for p in pods}
    util, ratio = _utilization(usage, requests, target)
    if util is None:
        return replace(base, error=f"requests for {res} sum to zero")
    base = replace(
        base, utilization=util, ratio=ratio, average_usage=sum(usage.values()) // len(usage)
    )
    scale_up_with_unready = bool(groups["unready"]) and ratio > 1.0
    if not scale_up_with_unready and not groups["missing"]:
        if within(ratio):
            return replace(base, proposal=current_replicas, note="within tolerance")
        return replace(base, proposal=math.ceil(ratio * len(usage)))
    filled = dict(usage)
    if groups["missing"] and ratio != 1.0:
        # the code's fallback on a scale-down is the request (or the target when above 100 %)
        share = max(100, target) if ratio < 1.0 else 0
        filled.update({n: requests[n] * share // 100 for n in groups["missing"]})
    if scale_up_with_unready:
        filled.update({n: 0 for n in groups["unready"]})
    new_util, new_ratio = _utilization(filled, requests, target)
    assert new_util is not None  # filled has every pod of usage, whose requests were not zero
    base = replace(base, recomputed_utilization=new_util, recomputed_ratio=new_ratio)
    if within(new_ratio):
        return replace(base, proposal=current_replicas, note="within tolerance once recomputed")
    if ratio < 1.0 < new_ratio or ratio > 1.0 > new_ratio:
        return replace(base, proposal=current_replicas, note="recomputing reversed the direction")
    proposal = math.ceil(new_ratio * len(filled))
    if (new_ratio < 1.0 and proposal > current_replicas) or (
        new_ratio > 1.0 and proposal < current_replicas
    ):
        return replace(base, proposal=current_replicas, note="pod count reversed the direction")
    return replace(base, proposal=proposal)


def _group(pod: PodSample, resource: str, now: float, settings: ControllerSettings) -> str:
    """groupPods: which set a pod falls into for one resource."""
    if pod.deleting or pod.phase == "Failed":
        return "ignored"
    if pod.phase == "Pending":
        return "unready"
    if resource not in pod.usage:
        return "missing"
    if resource != "cpu":
        return "ready"
    if pod.ready_transition is None or pod.start_time is None:
        return "unready"
    if pod.start_time + settings.cpu_initialization_period > now:
        # initialising: count the sample only if the pod is ready and was for a whole window
        sampled = now if pod.sample_time is None else pod.sample_time
        unready = not pod.ready or sampled < pod.ready_transition + pod.sample_window
    else:  # unready and never ready since start: its transition is within the initial delay
        unready = (
            not pod.ready
            and pod.start_time + settings.initial_readiness_delay > pod.ready_transition
        )
    return "unready" if unready else "ready"


def _utilization(
    usage: Mapping[str, int], requests: Mapping[str, int], target: int
) -> tuple[int | None, float]:
    """GetResourceUtilizationRatio: integer % of the requests of the pods that have usage."""
    total_request = sum(requests[name] for name in usage)
    if total_request <= 0:
        return None, 0.0
    util = sum(usage.values()) * 100 // total_request
    return util, util / target
