"""Kubernetes API objects as the seam's states (`kubectl get` columns, in Kubernetes' words)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kubernetes.client import (
    V1Deployment,
    V1Node,
    V1Pod,
    V1StatefulSet,
)
from kubernetes.utils.quantity import parse_quantity

from finchsim.platform.base import (
    ComponentState,
    ContainerState,
    EventRecord,
    NodeState,
    PodState,
)

POD_TEMPLATE_HASH = "pod-template-hash"


def _ts(value: datetime | None) -> float:
    return value.timestamp() if value is not None else 0.0


def owner_of(pod: V1Pod) -> tuple[str, str]:
    """(kind, name) of the workload a pod belongs to: a ReplicaSet's pod belongs to the
    Deployment whose name is the ReplicaSet's without the pod-template-hash suffix (how the
    deployment controller names them)."""
    refs = [r for r in pod.metadata.owner_references or [] if r.controller]
    if not refs:
        return ("", "")
    ref = refs[0]
    if ref.kind == "ReplicaSet":
        suffix = (pod.metadata.labels or {}).get(POD_TEMPLATE_HASH)
        if suffix and ref.name.endswith(f"-{suffix}"):
            return ("Deployment", ref.name[: -len(suffix) - 1])
        return ("ReplicaSet", ref.name)
    return (str(ref.kind), str(ref.name))


def _container(status: Any) -> ContainerState:
    state = status.state
    if state is not None and state.running is not None:
        return ContainerState(status.name, bool(status.ready), status.restart_count, "Running")
    if state is not None and state.terminated is not None:
        return ContainerState(
            status.name,
            False,
            status.restart_count,
            "Terminated",
            state.terminated.reason or "",
        )
    reason = state.waiting.reason if state is not None and state.waiting is not None else ""
    return ContainerState(status.name, False, status.restart_count, "Waiting", reason or "")


def pod_state(pod: V1Pod) -> PodState:
    status = pod.status
    conditions = {c.type: c for c in status.conditions or []}
    ready = conditions.get("Ready")
    kind, owner = owner_of(pod)
    containers = tuple(_container(c) for c in status.container_statuses or [])
    reason = ""
    scheduled = conditions.get("PodScheduled")
    if scheduled is not None and scheduled.status != "True":
        reason = scheduled.message or scheduled.reason or ""
    return PodState(
        namespace=pod.metadata.namespace,
        name=pod.metadata.name,
        uid=pod.metadata.uid,
        owner_kind=kind,
        owner=owner,
        node=pod.spec.node_name or None,
        phase=status.phase or "Pending",
        ready=ready is not None and ready.status == "True",
        created=_ts(pod.metadata.creation_timestamp),
        labels=dict(pod.metadata.labels or {}),
        containers=containers,
        deleting=pod.metadata.deletion_timestamp is not None,
        reason=reason or (status.reason or ""),
    )


def node_state(node: V1Node) -> NodeState:
    conditions = {c.type: c for c in node.status.conditions or []}
    ready = conditions.get("Ready")
    allocatable = node.status.allocatable or {}
    taints = tuple(
        f"{t.key}={t.value or ''}:{t.effect}" if t.value else f"{t.key}:{t.effect}"
        for t in node.spec.taints or []
    )
    return NodeState(
        name=node.metadata.name,
        ready=ready is not None and ready.status == "True",
        schedulable=not node.spec.unschedulable,
        cpu_allocatable_m=int(parse_quantity(allocatable.get("cpu", "0")) * 1000),
        memory_allocatable_bytes=int(parse_quantity(allocatable.get("memory", "0"))),
        labels=dict(node.metadata.labels or {}),
        taints=taints,
    )


def workload_state(kind: str, obj: V1Deployment | V1StatefulSet) -> ComponentState:
    """A Deployment's or StatefulSet's replicas (spec.replicas defaults to 1)."""
    s = obj.status
    return ComponentState(
        kind,
        obj.metadata.namespace,
        obj.metadata.name,
        obj.spec.replicas if obj.spec.replicas is not None else 1,
        s.ready_replicas or 0,
        s.available_replicas or 0,
        s.updated_replicas or 0,
    )


def _parse_time(value: str | None) -> float:
    if not value:
        return 0.0
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def event_record(e: dict[str, Any]) -> EventRecord:
    """An events.k8s.io/v1 Event as JSON (the typed client cannot read the Events that old
    recorders write: they leave `eventTime` null, which its model requires). The time is when
    it last happened (its series), else when it was first seen."""
    series = e.get("series") or {}
    when = (
        series.get("lastObservedTime")
        or e.get("eventTime")
        or e.get("deprecatedLastTimestamp")
        or e.get("deprecatedFirstTimestamp")
        or e["metadata"].get("creationTimestamp")
    )
    regarding = e.get("regarding") or {}
    source = (e.get("deprecatedSource") or {}).get("component", "")
    return EventRecord(
        time=_parse_time(when),
        namespace=e["metadata"].get("namespace", ""),
        object=f"{regarding.get('kind', '')}/{regarding.get('name', '')}",
        type=e.get("type") or "Normal",
        reason=e.get("reason") or "",
        message=e.get("note") or "",
        source=e.get("reportingController") or source or "",
        count=series.get("count") or e.get("deprecatedCount") or 1,
    )
