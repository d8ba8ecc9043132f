"""The Deployment and StatefulSet controllers' replica arithmetic, as pure functions.

`plan_deployment` is one reconcile of a Deployment: the ReplicaSet controller when every pod
runs the current template, the rolling update (maxSurge/maxUnavailable, as
pkg/controller/deployment/rolling.go computes them) or Recreate while old pods remain.
`plan_statefulset` is the StatefulSet controller with OrderedReady pods and the RollingUpdate
strategy: one pod at a time, highest ordinal first, only while every pod is ready."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PodView:
    name: str
    revision: int
    ready: bool
    scheduled: bool
    created: float


@dataclass(frozen=True)
class Plan:
    create: int = 0  # new pods of the current revision to create
    delete: tuple[str, ...] = ()  # pods to delete gracefully
    ordinal: int | None = None  # a StatefulSet's pod to create


def scaled(value: int | str, total: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int, or a percentage of `total`."""
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        return int(text)
    exact = int(text[:-1]) * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def surge_and_unavailable(
    max_surge: int | str, max_unavailable: int | str, desired: int
) -> tuple[int, int]:
    """deploymentutil.ResolveFenceposts: surge rounds up, unavailable down; never both 0."""
    surge = scaled(max_surge, desired, round_up=True)
    unavailable = scaled(max_unavailable, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _deletion_order(pods: list[PodView]) -> list[PodView]:
    # controller.ActivePods ordering: unscheduled, then not ready, then the newest first.
    return sorted(pods, key=lambda p: (p.scheduled, p.ready, -p.created))


def plan_deployment(
    pods: list[PodView],
    desired: int,
    revision: int,
    max_surge: int | str,
    max_unavailable: int | str,
    recreate: bool = False,
) -> Plan:
    """One reconcile of a Deployment; `pods` are its live (not terminating) pods."""
    new = [p for p in pods if p.revision == revision]
    old = [p for p in pods if p.revision != revision]
    if not old:  # steady state: the ReplicaSet controller
        if len(new) < desired:
            return Plan(create=desired - len(new))
        surplus = _deletion_order(new)[: len(new) - desired]
        return Plan(delete=tuple(p.name for p in surplus))
    if recreate:  # every old pod goes before any new one starts
        return Plan(delete=tuple(p.name for p in old))
    surge, unavailable = surge_and_unavailable(max_surge, max_unavailable, desired)
    # Scale the new ReplicaSet up, within desired + maxSurge pods in all.
    create = max(0, min(desired + surge - len(pods), desired - len(new)))
    surplus_new = _deletion_order(new)[: max(0, len(new) - desired)]
    # Scale old ReplicaSets down, keeping desired - maxUnavailable pods available.
    min_available = desired - unavailable
    new_unavailable = sum(1 for p in new if not p.ready)
    budget = len(pods) - min_available - new_unavailable
    delete: list[PodView] = []
    if budget > 0:  # cleanupUnhealthyReplicas: not-ready old pods go first
        delete = [p for p in _deletion_order(old) if not p.ready][:budget]
    ready_total = sum(1 for p in pods if p.ready)
    can_remove_ready = max(0, min(budget - len(delete), ready_total - min_available))
    delete += [p for p in _deletion_order(old) if p.ready][:can_remove_ready]
    return Plan(create=create, delete=tuple(p.name for p in delete + surplus_new))


def plan_statefulset(pods: list[PodView], desired: int, revision: int, ordinals: set[int]) -> Plan:
    """One reconcile of a StatefulSet (OrderedReady, RollingUpdate without partition).

    `ordinals` are the ordinals whose pod object still exists (even terminating): a pod
    name is reused only once the old pod is gone, which is why a StatefulSet pod on a dead
    node stays down until the node returns."""
    by_ordinal = {int(p.name.rsplit("-", 1)[1]): p for p in pods}
    for ordinal in range(desired):  # OrderedReady: one at a time, each ready before the next
        if ordinal not in ordinals:
            return Plan(create=1, ordinal=ordinal)
        if ordinal in by_ordinal and not by_ordinal[ordinal].ready:
            return Plan()
    extra = sorted((o for o in by_ordinal if o >= desired), reverse=True)
    if extra:
        return Plan(delete=(by_ordinal[extra[0]].name,))
    stale = sorted((o for o, p in by_ordinal.items() if p.revision != revision), reverse=True)
    if stale and all(p.ready for p in by_ordinal.values()):
        return Plan(delete=(by_ordinal[stale[0]].name,))
    return Plan()
