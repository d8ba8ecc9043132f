"""Waiting for workloads the way `kubectl rollout status` does, with reasons when it fails.

The conditions are kubectl's (staging/src/k8s.io/kubectl/pkg/polymorphichelpers/
rollout_status.go): a Deployment is rolled out when its controller has observed the current
generation, every replica is updated, no old replica is left and every updated one is
available; a StatefulSet when it has observed the generation, every replica is ready and the
update revision is current. A Deployment whose Progressing condition says
ProgressDeadlineExceeded has failed."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import Any

from kubernetes.client import V1Deployment, V1StatefulSet
from kubernetes.client.exceptions import ApiException

from finchsim.errors import PlatformError
from finchsim.platform.kubernetes import unready
from finchsim.platform.kubernetes.client import Clients


def deployment_waiting(d: V1Deployment) -> str | None:
    """Why the Deployment is not rolled out yet (kubectl's words), or None when it is."""
    s, name = d.status, d.metadata.name
    if (s.observed_generation or 0) < d.metadata.generation:
        return f"deployment {name}: waiting for the rollout to be observed"
    for cond in s.conditions or []:
        if cond.type == "Progressing" and cond.reason == "ProgressDeadlineExceeded":
            raise PlatformError(f"deployment {name} exceeded its progress deadline")
    want = d.spec.replicas if d.spec.replicas is not None else 1
    updated, total, available = s.updated_replicas or 0, s.replicas or 0, s.available_replicas or 0
    if updated < want:
        return f"deployment {name}: {updated} of {want} updated replicas are available"
    if total > updated:
        return f"deployment {name}: {total - updated} old replicas are pending termination"
    if available < updated:
        return f"deployment {name}: {available} of {updated} updated replicas are available"
    return None


def statefulset_waiting(st: V1StatefulSet) -> str | None:
    s, name = st.status, st.metadata.name
    if not s.observed_generation or st.metadata.generation > s.observed_generation:
        return f"statefulset {name}: waiting for the rollout to be observed"
    want = st.spec.replicas if st.spec.replicas is not None else 1
    if (s.ready_replicas or 0) < want:
        return f"statefulset {name}: {s.ready_replicas or 0} of {want} pods are ready"
    strategy = st.spec.update_strategy
    if (
        strategy is not None
        and strategy.type == "RollingUpdate"
        and (s.update_revision != s.current_revision)
    ):
        return f"statefulset {name}: waiting for the update to finish"
    return None


def not_rolled_out(clients: Clients, namespaces: list[str]) -> list[str]:
    """Every workload still rolling out, with kubectl's reason."""
    waiting = []
    for ns in namespaces:
        for d in clients.apps.list_namespaced_deployment(ns).items:
            if (why := deployment_waiting(d)) is not None:
                waiting.append(f"{ns}/{why}")
        for st in clients.apps.list_namespaced_stateful_set(ns).items:
            if (why := statefulset_waiting(st)) is not None:
                waiting.append(f"{ns}/{why}")
    return waiting


def pod_reasons(clients: Clients, namespaces: list[str]) -> list[str]:
    """Why pods are not ready, one line per workload (`unready.unready_lines`)."""
    lines = []
    for ns in namespaces:
        pods = clients.core.list_namespaced_pod(ns).items
        raw = clients.events.list_namespaced_event(ns, _preload_content=False)
        unhealthy = unready.unhealthy_messages(json.loads(raw.data)["items"])
        lines += unready.unready_lines(pods, unhealthy, functools.partial(_tail, clients))
    return lines


def _tail(clients: Clients, pod: Any, container: str, lines: int = 3) -> str:
    """What a container printed last, where the kubelet serves logs (KWOK's do not)."""
    try:
        return str(
            clients.core.read_namespaced_pod_log(
                pod.metadata.name, pod.metadata.namespace, container=container, tail_lines=lines
            )
        )
    except (ApiException, OSError, ValueError):
        return ""


def wait_rolled_out(
    clients: Clients,
    namespaces: list[str],
    timeout: float,
    poll: Callable[[], None] = lambda: None,
) -> None:
    """Block until every Deployment and StatefulSet in `namespaces` is rolled out; raise
    PlatformError naming what is not, and why its pods are not ready, after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        waiting = not_rolled_out(clients, namespaces)
        if not waiting:
            return
        if time.monotonic() > deadline:
            details = waiting + pod_reasons(clients, namespaces)
            raise PlatformError(f"not rolled out after {timeout:.0f}s:\n  " + "\n  ".join(details))
        poll()
        time.sleep(0.5)
