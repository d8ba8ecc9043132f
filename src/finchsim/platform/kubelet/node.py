"""One virtual node as a kubelet keeps it: the Node object, its status and its Lease.

Like a real kubelet (pkg/kubelet/kubelet_node_status.go, nodelease): the Node is registered with
its labels, capacity and addresses; its status (Ready, the addresses, the kubelet endpoint) is
patched every `status_every` seconds or when it changes, and the Lease in `kube-node-lease` is
renewed every `lease_every` seconds (a quarter of the lease duration, as the kubelet's renew
interval). A failed node stops both: the node-lifecycle controller notices."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from kubernetes.client import V1Lease, V1LeaseSpec, V1ObjectMeta
from kubernetes.client.exceptions import ApiException

from finchsim.platform.kubernetes.client import Clients

ZONE = "topology.kubernetes.io/zone"
LEASE_NS = "kube-node-lease"
KUBELET_VERSION = "v1.34.4-finchsim"


@dataclass(frozen=True)
class NodeSpec:
    """What one node is: name, zone, allocatable (= capacity here), address, kubelet port."""

    name: str
    zone: str
    cpu: str
    memory: str
    ip: str
    port: int
    pods: int = 110


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def node_body(spec: NodeSpec) -> dict[str, object]:
    """The Node as it is registered (status is patched separately, as a kubelet does)."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": spec.name,
            "labels": {
                "kubernetes.io/hostname": spec.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                ZONE: spec.zone,
                "finchsim.io/kubelet": "finchsim",
            },
            "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {},
    }


def status_body(spec: NodeSpec, ready: bool, since: str) -> dict[str, object]:
    """The node's status: capacity, addresses, endpoint and the kubelet's conditions (`since`:
    when they last changed, the kubelet's start)."""
    now = _now().strftime("%Y-%m-%dT%H:%M:%SZ")
    resources = {"cpu": spec.cpu, "memory": spec.memory, "pods": str(spec.pods)}

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": since,
        }

    return {
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "addresses": [
                {"type": "InternalIP", "address": spec.ip},
                {"type": "Hostname", "address": spec.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": spec.port}},
            "nodeInfo": {
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "containerRuntimeVersion": "finchsim://processes",
                "osImage": "finch-sim local processes",
                "kernelVersion": "",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "ok"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "ok"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "ok"),
                condition(
                    "Ready",
                    "True" if ready else "False",
                    "KubeletReady" if ready else "KubeletNotReady",
                    "kubelet is posting ready status" if ready else "kubelet is starting",
                ),
            ],
        }
    }


class NodeAgent:
    """Registers one node and keeps its status and lease fresh while it is `alive`."""

    def __init__(self, clients: Clients, spec: NodeSpec, lease_seconds: int) -> None:
        self.clients = clients
        self.spec = spec
        self.lease_seconds = lease_seconds
        self.alive = True
        self.last_status = 0.0
        self.last_lease = 0.0
        self.since = _now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def register(self) -> None:
        """Create the Node (or take over an existing one of the same name)."""
        try:
            self.clients.core.create_node(node_body(self.spec))
        except ApiException as exc:
            if exc.status != 409:
                raise
        self.patch_status()
        self.renew_lease()

    def patch_status(self) -> None:
        self.clients.core.patch_node_status(
            self.spec.name, status_body(self.spec, True, self.since)
        )

    def renew_lease(self) -> None:
        """Create or renew `kube-node-lease/<node>` (holder = node, renewTime = now)."""
        coordination = self.clients.coordination
        body = V1Lease(
            metadata=V1ObjectMeta(name=self.spec.name, namespace=LEASE_NS),
            spec=V1LeaseSpec(
                holder_identity=self.spec.name,
                lease_duration_seconds=self.lease_seconds,
                renew_time=_now(),
            ),
        )
        try:
            current = coordination.read_namespaced_lease(self.spec.name, LEASE_NS)
        except ApiException as exc:
            if exc.status != 404:
                raise
            coordination.create_namespaced_lease(LEASE_NS, body)
            return
        current.spec = body.spec
        coordination.replace_namespaced_lease(self.spec.name, LEASE_NS, current)

    def tick(self, now: float, lease_every: float, status_every: float) -> None:
        """Heartbeat when due (nothing while the node is failed)."""
        if not self.alive:
            return
        if now - self.last_lease >= lease_every:
            self.renew_lease()
            self.last_lease = now
        if now - self.last_status >= status_every:
            self.patch_status()
            self.last_status = now

    def revive(self) -> None:
        """Heartbeat again after a failure (Ready again from now)."""
        self.alive = True
        self.since = _now().strftime("%Y-%m-%dT%H:%M:%SZ")
        self.last_lease = self.last_status = 0.0
