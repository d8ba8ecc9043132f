"""How an HPA turns a proposal into replicas: `spec.behavior`, stabilization and rate limits.

`parse_behavior` types and defaults `spec.behavior` (apis/autoscaling/v2/defaults.go); the rest is
horizontal.go's normalisation: the stabilization window over past recommendations, the scaling
policies over past scale events (or, without a behavior, the legacy rules: highest
recommendation of the window, at most max(2 x current, 4) replicas) and the scale-event record."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from finchsim.errors import InputError, Problem
from finchsim.models.hpa_model import (
    DEFAULT_SETTINGS,
    Behavior,
    ControllerSettings,
    HpaState,
    ScaleEvent,
    ScalingPolicy,
    ScalingRules,
)

LEGACY_SCALE_UP_FACTOR, LEGACY_SCALE_UP_MINIMUM = 2.0, 4.0  # horizontal.go, behavior == nil


# ---- spec.behavior ---------------------------------------------------------------------------

_DEFAULT_RULES: dict[str, dict[str, Any]] = {  # apis/autoscaling/v2/defaults.go
    "scaleUp": {
        "stabilizationWindowSeconds": 0,
        "selectPolicy": "Max",
        "policies": [
            {"type": "Pods", "value": 4, "periodSeconds": 15},
            {"type": "Percent", "value": 100, "periodSeconds": 15},
        ],
    },
    # scale-down's window is left unset by the API and filled from the controller flag
    "scaleDown": {
        "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
    },
}


def parse_behavior(
    spec: Mapping[str, Any] | None,
    *,
    where: str = "HorizontalPodAutoscaler",
    settings: ControllerSettings = DEFAULT_SETTINGS,
) -> Behavior | None:
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


def _rules(
    spec: Mapping[str, Any] | None,
    direction: str,
    where: str,
    problems: list[Problem],
    settings: ControllerSettings,
) -> ScalingRules:
    merged = {
        **_DEFAULT_RULES[direction],
        **{k: v for k, v in (spec or {}).items() if v is not None},
    }
    path = f"spec.behavior.{direction}"
    window: float = settings.downscale_stabilization
    if "stabilizationWindowSeconds" in merged:
        window = merged["stabilizationWindowSeconds"]
        if not isinstance(window, int) or not 0 <= window <= 3600:
            problems.append(Problem(where, f"{path}.stabilizationWindowSeconds", "must be 0..3600"))
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
            problems.append(
                Problem(where, f"{path}.policies[{i}].periodSeconds", "must be 1..1800")
            )
        policies.append(ScalingPolicy(str(kind), int(value or 0), int(period or 0)))
    tolerance = merged.get("tolerance")
    if tolerance is not None and (not isinstance(tolerance, int | float) or tolerance < 0):
        problems.append(Problem(where, f"{path}.tolerance", "must be >= 0"))
        tolerance = None
    return ScalingRules(
        float(window), str(select), tuple(policies), None if tolerance is None else float(tolerance)
    )


# ---- normalisation: horizontal.go -------------------------------------------------------------


def stabilize_legacy(
    recs: tuple[tuple[float, int], ...], now: float, window: float, proposal: int
) -> tuple[int, tuple[tuple[float, int], ...]]:
    """stabilizeRecommendation: the highest recommendation not older than the window."""
    best, old = proposal, None
    for i, (time, value) in enumerate(recs):
        if time < now - window:
            old = i
        else:
            best = max(best, value)
    return best, _put(recs, old, (now, proposal))


def stabilize(
    recs: tuple[tuple[float, int], ...], now: float, current: int, proposal: int, behavior: Behavior
) -> tuple[int, tuple[tuple[float, int], ...]]:
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
    return (*items[:index], item, *items[index + 1 :])


def limit_legacy(current: int, desired: int, lo: int, hi: int) -> tuple[int, str, int, str | None]:
    """convertDesiredReplicasWithRules (no behavior): min, max and max(2 x current, 4)."""
    limit = int(max(LEGACY_SCALE_UP_FACTOR * current, LEGACY_SCALE_UP_MINIMUM))
    top, why = (limit, "ScaleUpLimit") if hi > limit else (hi, "TooManyReplicas")
    if desired < lo:
        return lo, "TooFewReplicas", limit, "minReplicas"
    if desired > top:
        label = f"scale-up limit max(2*{current}, 4)" if why == "ScaleUpLimit" else "maxReplicas"
        return top, why, limit, label
    return desired, "DesiredWithinRange", limit, None


def limit_rate(
    state: HpaState, now: float, current: int, desired: int, lo: int, hi: int, behavior: Behavior
) -> tuple[int, str, int | None, str | None]:
    """convertDesiredReplicasWithBehaviorRate: policies over their periods, then min/max."""
    up, down = state.scale_up_events, state.scale_down_events
    if desired > current:
        limit, policy = _policy_limit(current, up, down, behavior.scale_up, now, +1)
        limit = max(limit, current)  # no further scale-up until old events leave the period
        top, why, label = (
            (limit, "ScaleUpLimit", policy)
            if hi > limit
            else (hi, "TooManyReplicas", "maxReplicas")
        )
        if desired > top:
            return top, why, limit, label
        return desired, "DesiredWithinRange", limit, None
    if desired < current:
        limit, policy = _policy_limit(current, up, down, behavior.scale_down, now, -1)
        limit = min(limit, current)
        bottom, why, label = (
            (limit, "ScaleDownLimit", policy)
            if lo < limit
            else (lo, "TooFewReplicas", "minReplicas")
        )
        if desired < bottom:
            return bottom, why, limit, label
        return desired, "DesiredWithinRange", limit, None
    return desired, "DesiredWithinRange", None, None


def _policy_limit(
    current: int,
    up: tuple[ScaleEvent, ...],
    down: tuple[ScaleEvent, ...],
    rules: ScalingRules,
    now: float,
    sign: int,
) -> tuple[int, str]:
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


def record_scale(
    state: HpaState, behavior: Behavior | None, now: float, before: int, after: int
) -> HpaState:
    """storeScaleEvent: remember a change for the policies' periods (only with a behavior)."""
    if behavior is None or after == before:
        return state
    rules, events = (
        (behavior.scale_up, state.scale_up_events)
        if after > before
        else (behavior.scale_down, state.scale_down_events)
    )
    longest = max((p.period_seconds for p in rules.policies), default=0)
    events = tuple(replace(e, outdated=True) if e.time < now - longest else e for e in events)
    old = max((i for i, e in enumerate(events) if e.outdated), default=None)
    events = _put(events, old, ScaleEvent(now, abs(after - before)))
    if after > before:
        return replace(state, scale_up_events=events)
    return replace(state, scale_down_events=events)
