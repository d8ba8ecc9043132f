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
Utilization target exist in the topology, so only those are computed."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from finchsim.errors import InputError, Problem
from finchsim.platform.topology import Hpa, HpaMetric

SYNC_PERIOD_SECONDS = 15.0  # --horizontal-pod-autoscaler-sync-period: the caller's loop period
DEFAULT_METRICS = (HpaMetric("cpu", 80),)  # autoscaling/v2 defaulting when spec.metrics is empty
LEGACY_SCALE_UP_FACTOR, LEGACY_SCALE_UP_MINIMUM = 2.0, 4.0  # horizontal.go, behavior == nil


@dataclass(frozen=True)
class ControllerSettings:
    """The kube-controller-manager flags that shape every HPA, with their defaults."""

    # each field is the flag --horizontal-pod-autoscaler-<field with dashes>
    tolerance: float = 0.1
    cpu_initialization_period: float = 300.0
    initial_readiness_delay: float = 30.0
    downscale_stabilization: float = 300.0
    # feature gate HPAConfigurableTolerance: alpha (off) in 1.33-1.34, beta (on) from 1.35;
    # off, the API server drops `behavior.*.tolerance` and the flag's tolerance applies
    configurable_tolerance: bool = False


DEFAULT_SETTINGS = ControllerSettings()


# ---- spec.behavior ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ScalingPolicy:
    type: str  # Pods | Percent
    value: int
    period_seconds: int

    def __str__(self) -> str:
        return f"{self.type}={self.value}/{self.period_seconds}s"


@dataclass(frozen=True)
class ScalingRules:
    stabilization_window_seconds: float
    select_policy: str  # Max | Min | Disabled
    policies: tuple[ScalingPolicy, ...]
    tolerance: float | None = None  # None: ControllerSettings.tolerance


@dataclass(frozen=True)
class Behavior:
    scale_up: ScalingRules
    scale_down: ScalingRules


_DEFAULT_RULES: dict[str, dict[str, Any]] = {  # apis/autoscaling/v2/defaults.go
    "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15},
        {"type": "Percent", "value": 100, "periodSeconds": 15}]},
    # scale-down's window is left unset by the API and filled from the controller flag
    "scaleDown": {"selectPolicy": "Max", "policies": [
        {"type": "Percent", "value": 100, "periodSeconds": 15}]},
}


def parse_behavior(spec: Mapping[str, Any] | None, *, where: str = "HorizontalPodAutoscaler",
                   settings: ControllerSettings = DEFAULT_SETTINGS) -> Behavior | None:
    """Type an autoscaling/v2 `spec.behavior` dict (camelCase keys) with Kubernetes' defaults.

    Input: the dict as written in the manifest, or None/{} when absent (the topology cannot tell
    an explicit `behavior: {}` from none, so both mean "absent"). Output: None when absent (the
    controller then uses its legacy normalisation), else both directions fully filled: a field
    left out takes the default, a direction left out takes the whole default rules. Raises
    InputError listing every invalid field, with the API server's validation limits."""
    if not spec:
        return None
    problems: list[Problem] = []
    rules = {d: _rules(spec.get(d), d, where, problems, settings) for d in _DEFAULT_RULES}
    if problems:
        raise InputError(problems)
    return Behavior(scale_up=rules["scaleUp"], scale_down=rules["scaleDown"])


def _rules(spec: Mapping[str, Any] | None, direction: str, where: str, problems: list[Problem],
           settings: ControllerSettings) -> ScalingRules:
    merged = {**_DEFAULT_RULES[direction], **{k: v for k, v in (spec or {}).items()
                                              if v is not None}}
    path = f"spec.behavior.{direction}"
    window: float = settings.downscale_stabilization
    if "stabilizationWindowSeconds" in merged:
        window = merged["stabilizationWindowSeconds"]
        if not isinstance(window, int) or not 0 <= window <= 3600:
            problems.append(Problem(where, f"{path}.stabilizationWindowSeconds",
                                    "must be 0..3600"))
            window = 0
    select = merged["selectPolicy"]
    if select not in ("Max", "Min", "Disabled"):
        problems.append(Problem(where, f"{path}.selectPolicy", "must be Max, Min or Disabled"))
    policies = []
    if not merged["policies"]:
        problems.append(Problem(where, f"{path}.policies", "must specify at least one Policy"))
    for i, item in enumerate(merged["policies"]):
        kind, value, period = item.get("type"), item.get("value"), item.get("periodSeconds")
        if kind not in ("Pods", "Percent"):
            problems.append(Problem(where, f"{path}.policies[{i}].type", "must be Pods or Percent"))
        if not isinstance(value, int) or value <= 0:
            problems.append(Problem(where, f"{path}.policies[{i}].value", "must be > 0"))
        if not isinstance(period, int) or not 0 < period <= 1800:
            problems.append(Problem(where, f"{path}.policies[{i}].periodSeconds",
                                    "must be 1..1800"))
        policies.append(ScalingPolicy(str(kind), int(value or 0), int(period or 0)))
    tolerance = merged.get("tolerance")
    if tolerance is not None and (not isinstance(tolerance, int | float) or tolerance < 0):
        problems.append(Problem(where, f"{path}.tolerance", "must be >= 0"))
        tolerance = None
    return ScalingRules(float(window), str(select), tuple(policies),
                        None if tolerance is None else float(tolerance))


# ---- inputs, state, outputs ------------------------------------------------------------------

@dataclass(frozen=True)
class PodSample:
    """One pod of the scale target as the controller sees it at a sync.

    `usage` and `requests` are keyed by resource: "cpu" in millicores, "memory" in bytes; a
    resource missing from `usage` means metrics-server has no sample for the pod, one missing
    from `requests` means a container of the pod has no request. `ready_transition` is the
    Ready condition's lastTransitionTime (when it last became ready, or unready); None means the
    pod has no Ready condition yet. `sample_time` is when the usage was measured (None: `now`) and
    `sample_window` the span it averages (metrics-server's resolution)."""

    name: str
    ready: bool
    start_time: float | None
    ready_transition: float | None
    usage: Mapping[str, int] = field(default_factory=dict)
    requests: Mapping[str, int] = field(default_factory=dict)
    phase: str = "Running"  # Pending | Running | Succeeded | Failed
    deleting: bool = False  # has a deletion timestamp
    sample_time: float | None = None
    sample_window: float = 15.0


@dataclass(frozen=True)
class ScaleEvent:
    time: float
    change: int  # replicas added (scale-up list) or removed (scale-down list), > 0
    outdated: bool = False  # older than the longest policy period: its slot may be reused


@dataclass(frozen=True)
class HpaState:
    """What the controller keeps in memory between syncs; start with `HpaState()`."""

    recommendations: tuple[tuple[float, int], ...] = ()  # (time, unstabilised recommendation)
    scale_up_events: tuple[ScaleEvent, ...] = ()
    scale_down_events: tuple[ScaleEvent, ...] = ()


@dataclass(frozen=True)
class MetricResult:
    """One metric's proposal and the numbers behind it (proposal None when not computable)."""

    resource: str
    target: int  # averageUtilization, % of requests
    proposal: int | None = None
    utilization: int | None = None  # % of requests over the pods with a usable sample
    average_usage: int | None = None  # per pod: millicores or bytes
    ratio: float | None = None  # utilization / target
    recomputed_utilization: int | None = None  # with missing / not-yet-ready pods filled in
    recomputed_ratio: float | None = None
    ready_pods: int = 0
    unready_pods: tuple[str, ...] = ()
    missing_pods: tuple[str, ...] = ()
    ignored_pods: tuple[str, ...] = ()
    note: str = ""
    error: str | None = None


@dataclass(frozen=True)
class Decision:
    """One sync: every input, every intermediate number, the outcome and the next state."""

    hpa: str
    now: float
    current_replicas: int
    min_replicas: int
    max_replicas: int
    pods: tuple[PodSample, ...]
    behavior: Behavior | None
    metrics: tuple[MetricResult, ...]
    proposal: int | None  # the largest metric proposal
    stabilized: int | None
    rate_limit: int | None  # the policy (or legacy) bound in the direction of change
    limited_by: str  # the ScalingLimited condition reason, e.g. ScaleUpLimit, TooManyReplicas
    final_replicas: int
    reason: str
    state: HpaState

    @property
    def rescale(self) -> bool:
        return self.final_replicas != self.current_replicas

    def record(self) -> dict[str, Any]:
        """The decision as plain data, for a JSON log line."""
        return asdict(self)


# ---- one metric: replica_calculator.go --------------------------------------------------------

def compute_metric(metric: HpaMetric, current_replicas: int, pods: Sequence[PodSample],
                   now: float, settings: ControllerSettings = DEFAULT_SETTINGS,
                   tolerances: tuple[float, float] | None = None) -> MetricResult:
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
    base = MetricResult(res, target, ready_pods=len(usage),
                        unready_pods=tuple(groups["unready"]),
                        missing_pods=tuple(groups["missing"]),
                        ignored_pods=tuple(groups["ignored"]))
    if not usage:
        return replace(base, error="did not receive metrics for targeted pods "
                                   "(pods might be unready)")
    lacking = [p.name for p in pods if res not in p.requests]
    if lacking:  # the controller reads the requests of every pod the selector returns
        return replace(base, error=f"missing request for {res} in pod {lacking[0]}")
    requests = {p.name: p.requests[res] for p in pods}
    util, ratio = _utilization(usage, requests, target)
    if util is None:
        return replace(base, error=f"requests for {res} sum to zero")
    base = replace(base, utilization=util, ratio=ratio,
                   average_usage=sum(usage.values()) // len(usage))
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
            new_ratio > 1.0 and proposal < current_replicas):
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
        unready = (not pod.ready
                   and pod.start_time + settings.initial_readiness_delay > pod.ready_transition)
    return "unready" if unready else "ready"


def _utilization(usage: Mapping[str, int], requests: Mapping[str, int],
                 target: int) -> tuple[int | None, float]:
    """GetResourceUtilizationRatio: integer % of the requests of the pods that have usage."""
    total_request = sum(requests[name] for name in usage)
    if total_request <= 0:
        return None, 0.0
    util = sum(usage.values()) * 100 // total_request
    return util, util / target


# ---- one sync: horizontal.go ------------------------------------------------------------------

def sync(hpa: Hpa, state: HpaState, current_replicas: int, pods: Sequence[PodSample],
         now: float, settings: ControllerSettings = DEFAULT_SETTINGS) -> Decision:
    """One reconcile of one HPA (reconcileAutoscaler).

    Inputs: the HPA spec, the state returned by the previous sync (`HpaState()` the first
    time), the scale target's spec replicas, its pods and the time. Output: the Decision, whose
    `final_replicas` is what the target should be scaled to and whose `state` the caller passes
    to the next sync. The caller runs this every SYNC_PERIOD_SECONDS."""
    behavior = parse_behavior(hpa.behavior or None, where=f"HorizontalPodAutoscaler/{hpa.name}",
                              settings=settings)
    if not state.recommendations:  # recordInitialRecommendation
        state = replace(state, recommendations=((now, current_replicas),))
    lo, hi = hpa.min_replicas, hpa.max_replicas
    decide = _Decide(hpa, now, current_replicas, tuple(pods), behavior)
    if current_replicas == 0 and lo != 0:
        return decide(state, current_replicas, "ScalingDisabled",
                      "scaling is disabled since the replica count of the target is zero")
    if current_replicas > hi:
        return decide(_record_scale(state, behavior, now, current_replicas, hi), hi,
                      "TooManyReplicas", f"{current_replicas} replicas above maxReplicas → {hi}")
    if current_replicas < lo:
        return decide(_record_scale(state, behavior, now, current_replicas, lo), lo,
                      "TooFewReplicas", f"{current_replicas} replicas below minReplicas → {lo}")
    tolerances = (settings.tolerance, settings.tolerance)
    if behavior is not None and settings.configurable_tolerance:
        tolerances = (_or(behavior.scale_down.tolerance, settings.tolerance),
                      _or(behavior.scale_up.tolerance, settings.tolerance))
    results = tuple(compute_metric(m, current_replicas, pods, now, settings, tolerances)
                    for m in hpa.metrics or DEFAULT_METRICS)
    said = ", ".join(_describe(r) for r in results)
    proposals = [r.proposal for r in results if r.proposal is not None]
    proposal = max(proposals) if proposals else None
    if proposal is None or (len(proposals) < len(results) and proposal < current_replicas):
        # computeReplicasForMetrics: a failing metric blocks a scale-down, never a scale-up
        return decide(state, current_replicas, "FailedGetResourceMetric",
                      f"{said}; not scaling", metrics=results, proposal=proposal)
    limit: int | None
    if behavior is None:
        stabilized, recs = _stabilize_legacy(state.recommendations, now,
                                             settings.downscale_stabilization, proposal)
        final, limited_by, limit, policy = _limit_legacy(current_replicas, stabilized, lo, hi)
    else:
        stabilized, recs = _stabilize(state.recommendations, now, current_replicas, proposal,
                                      behavior)
        final, limited_by, limit, policy = _limit_rate(state, now, current_replicas,
                                                       stabilized, lo, hi, behavior)
    parts = [said]
    if stabilized != proposal:
        parts.append(f"stabilized by recent recommendations → {stabilized}")
    if final != stabilized:
        parts.append(f"limited by {policy or limited_by} → {final}")
    if final == current_replicas:
        parts.append("no change")
    state = _record_scale(replace(state, recommendations=recs), behavior, now,
                          current_replicas, final)
    return decide(state, final, limited_by, "; ".join(parts), metrics=results, proposal=proposal,
                  stabilized=stabilized, rate_limit=limit)


@dataclass(frozen=True)
class _Decide:
    hpa: Hpa
    now: float
    current: int
    pods: tuple[PodSample, ...]
    behavior: Behavior | None

    def __call__(self, state: HpaState, final: int, limited_by: str, reason: str,
                 metrics: tuple[MetricResult, ...] = (), proposal: int | None = None,
                 stabilized: int | None = None, rate_limit: int | None = None) -> Decision:
        return Decision(self.hpa.name, self.now, self.current, self.hpa.min_replicas,
                        self.hpa.max_replicas, self.pods, self.behavior, metrics, proposal,
                        stabilized, rate_limit, limited_by, final, reason, state)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _describe(r: MetricResult) -> str:
    if r.error is not None:
        return f"{r.resource}: {r.error}"
    text = f"{r.resource} {r.utilization}% of {r.target}% target"
    if r.recomputed_utilization is not None:
        text += (f" ({len(r.missing_pods)} missing, {len(r.unready_pods)} not ready:"
                 f" {r.recomputed_utilization}% recomputed)")
    note = f" ({r.note})" if r.note else ""
    return f"{text} → {r.proposal} replicas{note}"


def _stabilize_legacy(recs: tuple[tuple[float, int], ...], now: float, window: float,
                      proposal: int) -> tuple[int, tuple[tuple[float, int], ...]]:
    """stabilizeRecommendation: the highest recommendation not older than the window."""
    best, old = proposal, None
    for i, (time, value) in enumerate(recs):
        if time < now - window:
            old = i
        else:
            best = max(best, value)
    return best, _put(recs, old, (now, proposal))


def _stabilize(recs: tuple[tuple[float, int], ...], now: float, current: int, proposal: int,
               behavior: Behavior) -> tuple[int, tuple[tuple[float, int], ...]]:
    """stabilizeRecommendationWithBehaviors: clamp current between the window min and max."""
    up_cut = now - behavior.scale_up.stabilization_window_seconds
    down_cut = now - behavior.scale_down.stabilization_window_seconds
    up = down = proposal
    old = None
    for i, (time, value) in enumerate(recs):
        if time > up_cut:
            up = min(up, value)
        if time > down_cut:
            down = max(down, value)
        if time < up_cut and time < down_cut:
            old = i
    return min(max(current, up), down), _put(recs, old, (now, proposal))


def _put(items: tuple[Any, ...], index: int | None, item: Any) -> tuple[Any, ...]:
    """Reuse an outdated slot like the controller does, else append."""
    if index is None:
        return (*items, item)
    return (*items[:index], item, *items[index + 1:])


def _limit_legacy(current: int, desired: int, lo: int,
                  hi: int) -> tuple[int, str, int, str | None]:
    """convertDesiredReplicasWithRules (no behavior): min, max and max(2 x current, 4)."""
    limit = int(max(LEGACY_SCALE_UP_FACTOR * current, LEGACY_SCALE_UP_MINIMUM))
    top, why = (limit, "ScaleUpLimit") if hi > limit else (hi, "TooManyReplicas")
    if desired < lo:
        return lo, "TooFewReplicas", limit, "minReplicas"
    if desired > top:
        label = f"scale-up limit max(2*{current}, 4)" if why == "ScaleUpLimit" else "maxReplicas"
        return top, why, limit, label
    return desired, "DesiredWithinRange", limit, None


def _limit_rate(state: HpaState, now: float, current: int, desired: int, lo: int, hi: int,
                behavior: Behavior) -> tuple[int, str, int | None, str | None]:
    """convertDesiredReplicasWithBehaviorRate: policies over their periods, then min/max."""
    up, down = state.scale_up_events, state.scale_down_events
    if desired > current:
        limit, policy = _policy_limit(current, up, down, behavior.scale_up, now, +1)
        limit = max(limit, current)  # no further scale-up until old events leave the period
        top, why, label = ((limit, "ScaleUpLimit", policy) if hi > limit
                           else (hi, "TooManyReplicas", "maxReplicas"))
        if desired > top:
            return top, why, limit, label
        return desired, "DesiredWithinRange", limit, None
    if desired < current:
        limit, policy = _policy_limit(current, up, down, behavior.scale_down, now, -1)
        limit = min(limit, current)
        bottom, why, label = ((limit, "ScaleDownLimit", policy) if lo < limit
                              else (lo, "TooFewReplicas", "minReplicas"))
        if desired < bottom:
            return bottom, why, limit, label
        return desired, "DesiredWithinRange", limit, None
    return desired, "DesiredWithinRange", None, None


def _policy_limit(current: int, up: tuple[ScaleEvent, ...], down: tuple[ScaleEvent, ...],
                  rules: ScalingRules, now: float, sign: int) -> tuple[int, str]:
    """calculateScale{Up,Down}Limit*: the bound selectPolicy picks among the policies' bounds,
    and a label naming the policy that gave it."""
    if rules.select_policy == "Disabled":
        return current, "selectPolicy=Disabled"
    # Max picks the policy allowing the most change (highest bound up, lowest down), Min the least
    pick_higher = (rules.select_policy == "Max") == (sign > 0)
    best: tuple[int, str] | None = None
    for policy in rules.policies:
        added = sum(e.change for e in up if e.time > now - policy.period_seconds)
        removed = sum(e.change for e in down if e.time > now - policy.period_seconds)
        start = current - added + removed
        if policy.type == "Pods":
            bound = start + sign * policy.value
        elif sign > 0:  # rounded up so that a small percentage still adds a pod
            bound = math.ceil(start * (1 + policy.value / 100))
        else:
            bound = int(start * (1 - policy.value / 100))
        if best is None or (bound > best[0] if pick_higher else bound < best[0]):
            best = (bound, f"policy {policy}")
    return best or (current, "no policy")


def _record_scale(state: HpaState, behavior: Behavior | None, now: float, before: int,
                  after: int) -> HpaState:
    """storeScaleEvent: remember a change for the policies' periods (only with a behavior)."""
    if behavior is None or after == before:
        return state
    rules, events = ((behavior.scale_up, state.scale_up_events) if after > before
                     else (behavior.scale_down, state.scale_down_events))
    longest = max((p.period_seconds for p in rules.policies), default=0)
    events = tuple(replace(e, outdated=True) if e.time < now - longest else e for e in events)
    old = max((i for i, e in enumerate(events) if e.outdated), default=None)
    events = _put(events, old, ScaleEvent(now, abs(after - before)))
    if after > before:
        return replace(state, scale_up_events=events)
    return replace(state, scale_down_events=events)
