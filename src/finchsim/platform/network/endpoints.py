"""Each Service's ready endpoints, computed from the pods as the EndpointSlice controller would.

The local platform's pods have loopback IPs (127.0.x.y), which EndpointSlices refuse
("may not be in the loopback range"), so the endpoint controllers are off and the proxy and the
ingress call `ready_endpoints` instead. The rules are the Kubernetes ones (v1.34,
`pkg/controller/endpointslice` and `staging/src/k8s.io/endpointslice/utils.go`):

- only Services with a `spec.selector` get endpoints (no selector: someone else manages them;
  `type: ExternalName` has none);
- a pod is selected when it is in the Service's namespace and every selector label matches;
- a pod without an IP, or in phase Failed/Succeeded, is never an endpoint;
- a pod is *ready* when its `Ready` condition is `True` and it is not terminating
  (`metadata.deletionTimestamp` set); `spec.publishNotReadyAddresses` makes every such pod ready,
  terminating ones included;
- a numeric `targetPort` is used as is; a named one is looked up per pod among its containers'
  ports (and restartable init containers', i.e. sidecars) by name and protocol, and a pod that
  has no port of that name is left out of that Service port only; a missing `targetPort`
  defaults to `port`, as the API server does.

A headless Service (`clusterIP: None`) has no virtual IP: in a cluster, its name resolves to
the ready pods' addresses at each lookup, so a client that started before the pods retries and
finds them. Programs here are told a Service's address once, in their environment, so a
headless Service gets a stable loopback address of its own (`headless_ip`, in 127.97.0.0/16,
from its namespace and name) that the proxy serves like a ClusterIP.

Objects may be raw JSON dicts as the API returns them (camelCase) or the kubernetes client's
models (converted with its own serializer). The functions are pure: same input, same output,
endpoints sorted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

HEADLESS_RANGE = "127.97.0.0/16"


def headless_ip(namespace: str, name: str) -> str:
    """The stable loopback address standing for headless Service `namespace/name`."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return f"127.97.{1 + digest[0] % 254}.{1 + digest[1] % 254}"


def service_ip(svc: Mapping[str, Any]) -> str | None:
    """Where clients reach a Service here: its ClusterIP, `headless_ip` for a headless one
    with a selector, None for ExternalName or a headless Service without a selector."""
    spec, meta = svc.get("spec") or {}, svc.get("metadata") or {}
    if spec.get("type") == "ExternalName":
        return None
    ip = spec.get("clusterIP")
    if ip and ip != "None":
        return str(ip)
    if not spec.get("selector"):
        return None
    return headless_ip(meta.get("namespace", "default"), meta["name"])


# (namespace, service name, service port) -> [(pod IP, target port), ...]
EndpointKey = tuple[str, str, int]
Endpoints = dict[EndpointKey, list[tuple[str, int]]]


@dataclass(frozen=True)
class Frontend:
    """One Service port as a proxy listens for it: the ClusterIP and port, and its protocol."""

    namespace: str
    service: str
    cluster_ip: str
    port: int
    protocol: str = "TCP"

    @property
    def key(self) -> EndpointKey:
        return (self.namespace, self.service, self.port)


def as_dict(obj: Any) -> dict[str, Any]:
    """A Service or Pod as the API's JSON (camelCase keys), whichever form it came in."""
    if isinstance(obj, Mapping):
        return dict(obj)
    from kubernetes.client import ApiClient  # only when given the client's models

    out: dict[str, Any] = ApiClient().sanitize_for_serialization(obj)
    return out


def frontends(services: Iterable[Any]) -> list[Frontend]:
    """Every port of every Service that has an address here (`service_ip`)."""
    out = []
    for raw in services:
        svc = as_dict(raw)
        spec = svc.get("spec") or {}
        ip = service_ip(svc)
        if ip is None:
            continue
        meta = svc.get("metadata") or {}
        for port in spec.get("ports") or []:
            out.append(
                Frontend(
                    meta.get("namespace", "default"),
                    meta["name"],
                    ip,
                    int(port["port"]),
                    port.get("protocol", "TCP"),
                )
            )
    return sorted(out, key=lambda f: (f.namespace, f.service, f.port))


def ready_endpoints(services: Iterable[Any], pods: Iterable[Any]) -> Endpoints:
    """The ready endpoints of every port of every selector Service (see the module docstring).
    A Service port with no ready endpoint maps to an empty list."""
    pod_dicts = [as_dict(p) for p in pods]
    out: Endpoints = {}
    for raw in services:
        svc = as_dict(raw)
        spec = svc.get("spec") or {}
        selector = spec.get("selector")
        if not selector or spec.get("type") == "ExternalName":
            continue
        meta = svc.get("metadata") or {}
        namespace = meta.get("namespace", "default")
        publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
        members = [
            pod
            for pod in pod_dicts
            if (pod.get("metadata") or {}).get("namespace", "default") == namespace
            and _selects(selector, (pod.get("metadata") or {}).get("labels") or {})
            and _is_ready_endpoint(pod, publish_not_ready)
        ]
        for port in spec.get("ports") or []:
            found = []
            for pod in members:
                target = _target_port(pod, port)
                if target is not None:
                    found.append((_pod_ip(pod), target))
            out[(namespace, meta["name"], int(port["port"]))] = sorted(set(found), key=_order)
    return out


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _pod_ip(pod: Mapping[str, Any]) -> str:
    status = pod.get("status") or {}
    ip = status.get("podIP")
    if not ip:
        ips = status.get("podIPs") or []
        ip = ips[0].get("ip", "") if ips else ""
    return str(ip or "")


def _is_ready_endpoint(pod: Mapping[str, Any], publish_not_ready: bool) -> bool:
    status = pod.get("status") or {}
    if not _pod_ip(pod) or status.get("phase") in ("Failed", "Succeeded"):
        return False
    if publish_not_ready:
        return True
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False  # terminating: serving at most, never ready
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def _target_port(pod: Mapping[str, Any], port: Mapping[str, Any]) -> int | None:
    target = port.get("targetPort", port["port"])
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    protocol = port.get("protocol", "TCP")
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in [*(spec.get("containers") or []), *sidecars]:
        for cport in container.get("ports") or []:
            if cport.get("name") == target and cport.get("protocol", "TCP") == protocol:
                return int(cport["containerPort"])
    return None


def _order(endpoint: tuple[str, int]) -> tuple[tuple[int, ...], int]:
    ip, port = endpoint
    return (tuple(int(p) for p in ip.split(".")) if "." in ip else (0,), port)
