"""`kubectl drain` over the kubernetes client: cordon, then the eviction API.

Like kubectl (staging/src/k8s.io/kubectl/pkg/drain): DaemonSet pods are skipped, every other
pod on the node is evicted through `pods/eviction` (policy/v1), and an eviction the API refuses
with 429 TooManyRequests (a PodDisruptionBudget has no disruptions left) is retried every 5 s
until the timeout; then the error names the budget and its numbers from the PDB's status."""

from __future__ import annotations

import time
from collections.abc import Callable

from kubernetes.client import V1DeleteOptions, V1Eviction, V1ObjectMeta, V1Pod
from kubernetes.client.exceptions import ApiException

from finchsim.errors import PlatformError
from finchsim.platform.kubernetes.client import Clients, api_message

RETRY_SECONDS = 5.0  # kubectl drain's retry interval after a 429


def cordon(clients: Clients, node: str, unschedulable: bool = True) -> None:
    """`kubectl cordon` (or `uncordon` with unschedulable=False)."""
    try:
        clients.core.patch_node(node, {"spec": {"unschedulable": unschedulable or None}})
    except ApiException as exc:
        raise PlatformError(f"cordon {node}: {api_message(exc)}") from exc


def _evictable(pod: V1Pod) -> bool:
    refs = pod.metadata.owner_references or []
    is_daemon = any(r.kind == "DaemonSet" and r.controller for r in refs)
    return not is_daemon and pod.metadata.deletion_timestamp is None


def explain_budget(clients: Clients, pod: V1Pod) -> str:
    """The PodDisruptionBudgets covering `pod`, with the numbers that refuse its eviction."""
    labels = pod.metadata.labels or {}
    parts = []
    for pdb in clients.policy.list_namespaced_pod_disruption_budget(pod.metadata.namespace).items:
        match = (pdb.spec.selector.match_labels or {}) if pdb.spec.selector else {}
        if match and all(labels.get(k) == v for k, v in match.items()):
            s = pdb.status
            parts.append(
                f"PodDisruptionBudget {pdb.metadata.name} allows {s.disruptions_allowed} "
                f"disruption(s): {s.current_healthy} healthy of {s.expected_pods} expected, "
                f"needs {s.desired_healthy}"
            )
    return "; ".join(parts) or "no PodDisruptionBudget covers it"


def drain(
    clients: Clients,
    node: str,
    timeout: float,
    log: Callable[[str], None] = lambda _m: None,
    poll: Callable[[], None] = lambda: None,
) -> None:
    """Cordon `node` and evict its pods; return when none is left to evict (evicted pods may
    still be terminating). Raises PlatformError naming the budget after `timeout`."""
    cordon(clients, node)
    deadline = time.monotonic() + timeout
    retry_at: dict[str, float] = {}
    while True:
        pods = clients.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}")
        left = [p for p in pods.items if _evictable(p)]
        if not left:
            return
        for pod in left:
            key = f"{pod.metadata.namespace}/{pod.metadata.name}"
            if time.monotonic() < retry_at.get(key, 0.0):
                continue
            try:
                clients.core.create_namespaced_pod_eviction(
                    pod.metadata.name,
                    pod.metadata.namespace,
                    V1Eviction(
                        metadata=V1ObjectMeta(
                            name=pod.metadata.name, namespace=pod.metadata.namespace
                        ),
                        delete_options=V1DeleteOptions(),
                    ),
                )
                log(f"{key}: evicted (drain {node})")
            except ApiException as exc:
                if exc.status == 404:
                    continue
                if exc.status != 429:
                    raise PlatformError(
                        f"drain {node}: evicting {key}: {api_message(exc)}"
                    ) from exc
                if time.monotonic() > deadline:
                    raise PlatformError(
                        f"drain {node}: cannot evict {key} after {timeout:.0f}s: "
                        + explain_budget(clients, pod)
                    ) from exc
                retry_at[key] = time.monotonic() + RETRY_SECONDS
        poll()
        time.sleep(0.5)
