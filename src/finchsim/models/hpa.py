"""The HorizontalPodAutoscaler controller as pure functions: what kube-controller-manager decides.

Checked against the Kubernetes docs ("Horizontal Pod Autoscaling": algorithm details, configurable
scaling behavior) and kubernetes/kubernetes: podautoscaler/replica_calculator.go
(GetResourceReplicas, groupPods), horizontal.go (computeReplicasForMetrics, reconcileAutoscaler,
normalizeDesiredReplicas[WithBehaviors], stabilizeRecommendation[WithBehaviors],
convertDesiredReplicasWithBehaviorRate, storeScaleEvent) and apis/autoscaling/v2/defaults.go.
Where the docs and the code differ, the code wins, because the local platform must do what a
cluster does:
- on a scale-down, a pod without a metric sample counts as using max(100 %, target) of its
  *request*; the docs say "100 % of the desired value";
- an HPA without `behavior` is normalised the legacy way (highest recommendation of the last
  300 s; at most max(2 x current, 4) replicas per sync), which is not the documented default
  behavior: from 1 replica the legacy path allows 4, the default policies allow 5;
- the tolerance test is `1 - down <= ratio <= 1 + up` (Kubernetes >= 1.33), so exactly 110 %
  of target is within tolerance.

No clock is read here: `now` is an argument (seconds on any epoch shared with the pod times) and
`sync` returns the controller's next state instead of mutating it. Only Resource metrics with a
Utilization target exist in the topology, so only those are computed.

This module holds one sync (`sync`, horizontal.go's reconcile) and is the import point for
callers: it re-exports the pieces, which live in `hpa_model` (settings, inputs, state, the
decision record), `hpa_replicas` (one metric's proposal, replica_calculator.go) and
`hpa_behavior` (`spec.behavior`, stabilization and rate limits)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from finchsim.models.hpa_behavior import (
    LEGACY_SCALE_UP_FACTOR,
    LEGACY_SCALE_UP_MINIMUM,
    limit_legacy,
    limit_rate,
    parse_behavior,
    record_scale,
    stabilize,
    stabilize_legacy,
)
from finchsim.models.hpa_model import (
    DEFAULT_METRICS,
    DEFAULT_SETTINGS,
    SYNC_PERIOD_SECONDS,
    Behavior,
    ControllerSettings,
    Decision,
    Hpa,
    HpaState,
    MetricResult,
    PodSample,
    ScaleEvent,
    ScalingPolicy,
    ScalingRules,
)
from finchsim.models.hpa_replicas import compute_metric

__all__ = [
    "DEFAULT_METRICS",
    "DEFAULT_SETTINGS",
    "LEGACY_SCALE_UP_FACTOR",
    "LEGACY_SCALE_UP_MINIMUM",
    "SYNC_PERIOD_SECONDS",
    "Behavior",
    "ControllerSettings",
    "Decision",
    "HpaState",
    "MetricResult",
    "PodSample",
    "ScaleEvent",
    "ScalingPolicy",
    "ScalingRules",
    "compute_metric",
    "parse_behavior",
    "sync",
]


# ---- one sync: horizontal.go ------------------------------------------------------------------


def sync(
    hpa: Hpa,
    state: HpaState,
    current_replicas: int,
    pods: Sequence[PodSample],
    now: float,
    settings: ControllerSettings = DEFAULT_SETTINGS,
) -> Decision:
    """One reconcile of one HPA (reconcileAutoscaler).

    Inputs: the HPA spec, the state returned by the previous sync (`HpaState()` the first
    time), the scale target's spec replicas, its pods and the time. Output: the Decision, whose
    `final_replicas` is what the target should be scaled to and whose `state` the caller passes
    to the next sync. The caller runs this every SYNC_PERIOD_SECONDS."""
    behavior = parse_behavior(
        hpa.behavior or None, where=f"HorizontalPodAutoscaler/{hpa.name}", settings=settings
    )
    if not state.recommendations:  # recordInitialRecommendation
        state = replace(state, recommendations=((now, current_replicas),))
    lo, hi = hpa.min_replicas, hpa.max_replicas
    decide = _Decide(hpa, now, current_replicas, tuple(pods), behavior)
    if current_replicas == 0 and lo != 0:
        return decide(
            state,
            current_replicas,
            "ScalingDisabled",
            "scaling is disabled since the replica count of the target is zero",
        )
    if current_replicas > hi:
        return decide(
            record_scale(state, behavior, now, current_replicas, hi),
            hi,
            "TooManyReplicas",
            f"{current_replicas} replicas above maxReplicas → {hi}",
        )
    if current_replicas < lo:
        return decide(
            record_scale(state, behavior, now, current_replicas, lo),
            lo,
            "TooFewReplicas",
            f"{current_replicas} replicas below minReplicas → {lo}",
        )
    tolerances = (settings.tolerance, settings.tolerance)
    if behavior is not None and settings.configurable_tolerance:
        tolerances = (
            _or(behavior.scale_down.tolerance, settings.tolerance),
            _or(behavior.scale_up.tolerance, settings.tolerance),
        )
    results = tuple(
        compute_metric(m, current_replicas, pods, now, settings, tolerances)
        for m in hpa.metrics or DEFAULT_METRICS
    )
    said = ", ".join(_describe(r) for r in results)
    proposals = [r.proposal for r in results if r.proposal is not None]
    proposal = max(proposals) if proposals else None
    if proposal is None or (len(proposals) < len(results) and proposal < current_replicas):
        # computeReplicasForMetrics: a failing metric blocks a scale-down, never a scale-up
        return decide(
            state,
            current_replicas,
            "FailedGetResourceMetric",
            f"{said}; not scaling",
            metrics=results,
            proposal=proposal,
        )
    limit: int | None
    if behavior is None:
        stabilized, recs = stabilize_legacy(
            state.recommendations, now, settings.downscale_stabilization, proposal
        )
        final, limited_by, limit, policy = limit_legacy(current_replicas, stabilized, lo, hi)
    else:
        stabilized, recs = stabilize(
            state.recommendations, now, current_replicas, proposal, behavior
        )
        final, limited_by, limit, policy = limit_rate(
            state, now, current_replicas, stabilized, lo, hi, behavior
        )
    parts = [said]
    if stabilized != proposal:
        parts.append(f"stabilized by recent recommendations → {stabilized}")
    if final != stabilized:
        parts.append(f"limited by {policy or limited_by} → {final}")
    if final == current_replicas:
        parts.append("no change")
    state = record_scale(
        replace(state, recommendations=recs), behavior, now, current_replicas, final
    )
    return decide(
        state,
        final,
        limited_by,
        "; ".join(parts),
        metrics=results,
        proposal=proposal,
        stabilized=stabilized,
        rate_limit=limit,
    )


@dataclass(frozen=True)
class _Decide:
    hpa: Hpa
    now: float
    current: int
    pods: tuple[PodSample, ...]
    behavior: Behavior | None

    def __call__(
        self,
        state: HpaState,
        final: int,
        limited_by: str,
        reason: str,
        metrics: tuple[MetricResult, ...] = (),
        proposal: int | None = None,
        stabilized: int | None = None,
        rate_limit: int | None = None,
    ) -> Decision:
        return Decision(
            self.hpa.name,
            self.now,
            self.current,
            self.hpa.min_replicas,
            self.hpa.max_replicas,
            self.pods,
            self.behavior,
            metrics,
            proposal,
            stabilized,
            rate_limit,
            limited_by,
            final,
            reason,
            state,
        )


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _describe(r: MetricResult) -> str:
    if r.error is not None:
        return f"{r.resource}: {r.error}"
    text = f"{r.resource} {r.utilization}% of {r.target}% target"
    if r.recomputed_utilization is not None:
        text += (
            f" ({len(r.missing_pods)} missing, {len(r.unready_pods)} not ready:"
            f" {r.recomputed_utilization}% recomputed)"
        )
    note = f" ({r.note})" if r.note else ""
    return f"{text} → {r.proposal} replicas{note}"
