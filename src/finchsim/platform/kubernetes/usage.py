"""Writing the load model's per-pod usage where KWOK's resource-usage API reads it.

Each pod's annotations `cpu.usage.finchsim.io/<container>` and `memory.usage.finchsim.io/
<container>` are read by the ClusterResourceUsage that `controlplane.kwokctl` configures; the
kwok controller serves them on its `/metrics/resource` endpoints, metrics-server scrapes them,
and the real HPA scales on them. A pod is patched only when its value changes by more than a
millicore or a MiB, so a steady load costs no API calls."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kubernetes.client import V1Pod
from kubernetes.client.exceptions import ApiException
from kubernetes.utils.quantity import parse_quantity

from finchsim.models.load import LoadModel
from finchsim.platform.controlplane.kwokctl import USAGE_ANNOTATION
from finchsim.platform.kubernetes.client import Clients
from finchsim.platform.kubernetes.states import owner_of


def _ready(pod: V1Pod) -> bool:
    return (
        any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        and pod.metadata.deletion_timestamp is None
    )


def desired_annotations(
    model: LoadModel, pods: Iterable[V1Pod], offered_rps: Mapping[str, float]
) -> dict[tuple[str, str], dict[str, str]]:
    """(namespace, pod) -> the usage annotations it should carry under `offered_rps`."""
    pods = list(pods)
    ready: dict[tuple[str, str], int] = {}
    for pod in pods:
        key = (pod.metadata.namespace, owner_of(pod)[1])
        ready[key] = ready.get(key, 0) + (1 if _ready(pod) else 0)
    wanted = {}
    for pod in pods:
        ns, owner = pod.metadata.namespace, owner_of(pod)[1]
        annotations = {}
        for container in pod.spec.containers:
            limits = (container.resources.limits if container.resources else None) or {}
            limit_m = float(parse_quantity(limits["cpu"])) * 1000 if "cpu" in limits else 0.0
            # An unready pod is out of its Services: it gets no requests, only its idle cost.
            rps = offered_rps if _ready(pod) else {}
            use = model.usage(owner, container.name, rps, ready[(ns, owner)], limit_m)
            annotations[USAGE_ANNOTATION["cpu"] + container.name] = f"{round(use.cpu_m)}m"
            annotations[USAGE_ANNOTATION["memory"] + container.name] = str(round(use.memory_bytes))
        wanted[(ns, pod.metadata.name)] = annotations
    return wanted


def _close(current: str | None, wanted: str, tolerance: float) -> bool:
    if current is None:
        return False
    try:
        return abs(float(parse_quantity(current)) - float(parse_quantity(wanted))) < tolerance
    except ValueError:
        return False


def write_usage(
    clients: Clients, model: LoadModel, namespaces: Iterable[str], offered_rps: Mapping[str, float]
) -> int:
    """Patch every pod of `namespaces` whose usage annotations are off; return how many."""
    patched = 0
    for ns in namespaces:
        pods = clients.core.list_namespaced_pod(ns).items
        live = {
            p.metadata.name: p for p in pods if p.spec.node_name and p.status.phase == "Running"
        }
        for (pod_ns, name), wanted in desired_annotations(
            model, live.values(), offered_rps
        ).items():
            current = live[name].metadata.annotations or {}
            stale = {
                k: v
                for k, v in wanted.items()
                if not _close(current.get(k), v, 0.001 if k.startswith("cpu") else 2**20)
            }
            if not stale:
                continue
            try:
                clients.core.patch_namespaced_pod(
                    name, pod_ns, {"metadata": {"annotations": stale}}
                )
                patched += 1
            except ApiException as exc:
                if exc.status != 404:  # a pod deleted meanwhile is fine
                    raise
    return patched
