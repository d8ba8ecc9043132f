"""The `kwok` provider: a real control plane with simulated nodes (kubernetes-sigs/kwok).

kwokctl's binary runtime starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
metrics-server and the kwok controller from the pinned cache, all on 127.0.0.1, in the run
directory. The node pools of `cluster/kwok/cluster.yaml` are registered as Nodes the kwok
controller keeps alive (leases, status); pods bound to them become Running and Ready without
processes, and their CPU and memory come from the load model. A node fails by losing its
`finchsim.io/kubelet=up` label: kwok stops heartbeating it and the node-lifecycle controller
does the rest (NotReady after the grace period, the unreachable taints, evictions after the
pods' 300 s toleration)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kubernetes.client import V1Node, V1NodeSpec, V1NodeStatus, V1ObjectMeta
from kubernetes.client.exceptions import ApiException

from finchsim.errors import PlatformError
from finchsim.platform.base import Capability
from finchsim.platform.controlplane.kwokctl import (
    MANAGED_DOWN,
    MANAGED_LABEL,
    MANAGED_UP,
    KwokctlCluster,
    kwokctl_config,
)
from finchsim.platform.kubernetes import provisioner
from finchsim.platform.kubernetes.apply import apply_objects
from finchsim.platform.kubernetes.client import Clients, api_message
from finchsim.platform.kubernetes.provider import KUBERNETES_CAPABILITIES, Provider
from finchsim.platform.manifests import Rendered
from finchsim.platform.providers.kwok_settings import KwokClusterSettings, NodePool

ZONE = "topology.kubernetes.io/zone"


def node_objects(pools: tuple[NodePool, ...]) -> list[V1Node]:
    """One Node per pool member, named `<pool>-<n>`, zones round-robin, at the pool's size."""
    nodes = []
    for pool in pools:
        for i in range(pool.count):
            name = f"{pool.name}-{i}"
            resources = {"cpu": pool.cpu, "memory": pool.memory, "pods": str(pool.pods)}
            nodes.append(
                V1Node(
                    metadata=V1ObjectMeta(
                        name=name,
                        labels={
                            **pool.labels,
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                            "node.kubernetes.io/pool": pool.name,
                            ZONE: pool.zones[i % len(pool.zones)],
                            MANAGED_LABEL: MANAGED_UP,
                        },
                        annotations={
                            "node.alpha.kubernetes.io/ttl": "0",
                            # metrics-server >= 0.7 scrapes this path (kwok serves every node
                            # on one port, one path per node).
                            "metrics.k8s.io/resource-metrics-path": (
                                f"/metrics/nodes/{name}/metrics/resource"
                            ),
                        },
                    ),
                    spec=V1NodeSpec(),
                    status=V1NodeStatus(allocatable=resources, capacity=resources),
                )
            )
    return nodes


class KwokProvider(Provider):
    name = "kwok"
    capabilities = KUBERNETES_CAPABILITIES | {Capability.NODE_FAILURE, Capability.SIMULATED_LOAD}

    def __init__(
        self,
        settings: KwokClusterSettings,
        binaries: Mapping[str, Path],
        storage: list[Rendered],
        cluster_name: str,
    ) -> None:
        self.settings = settings
        self.binaries = binaries
        self.storage = storage
        self.cluster_name = cluster_name
        self.cluster: KwokctlCluster | None = None

    def create(self, run_dir: Path, log: Callable[[str], None]) -> Path:
        self.cluster = KwokctlCluster(self.cluster_name, run_dir / "kwok", self.binaries)
        log("starting the control plane (etcd, kube-apiserver, controllers, metrics-server)")
        return self.cluster.create(
            kwokctl_config(self.binaries, self.settings.timings.controlplane())
        )

    def prepare(self, clients: Clients, namespaces: list[str]) -> None:
        problems = apply_objects(clients, self.storage)
        if problems:
            raise PlatformError("; ".join(str(p) for p in problems))
        for node in node_objects(self.settings.nodePools):
            try:
                clients.core.create_node(node)
            except ApiException as exc:
                if exc.status != 409:
                    raise PlatformError(
                        f"registering node {node.metadata.name}: {api_message(exc)}"
                    ) from exc

        # A new Node carries the not-ready taint until the node-lifecycle controller sees it
        # Ready; pods applied before that would all crowd onto the first node to clear it.
        _wait_nodes_schedulable(
            clients, [n.metadata.name for n in node_objects(self.settings.nodePools)]
        )

    def reconcile(self, clients: Clients) -> None:
        provisioner.reconcile(clients)

    def dead(self) -> str | None:
        if self.cluster is None:
            return None
        dead = self.cluster.dead_components()
        if not dead:
            return None
        tails = self.cluster.log_tails(only=dead)
        return f"control-plane process(es) died: {', '.join(dead)}\n{tails}"

    def _relabel(self, clients: Clients, node: str, value: str) -> None:
        try:
            clients.core.patch_node(node, {"metadata": {"labels": {MANAGED_LABEL: value}}})
        except ApiException as exc:
            raise PlatformError(f"node {node}: {api_message(exc)}") from exc

    def fail_node(self, clients: Clients, node: str) -> None:
        self._relabel(clients, node, MANAGED_DOWN)

    def recover_node(self, clients: Clients, node: str) -> None:
        self._relabel(clients, node, MANAGED_UP)

    def delete(self, clients: Clients | None) -> None:
        if self.cluster is not None:
            self.cluster.delete()

    def state(self) -> dict[str, Any]:
        assert self.cluster is not None
        return {"cluster": self.cluster.name, "workdir": str(self.cluster.workdir)}


def _wait_nodes_schedulable(clients: Clients, names: list[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    waiting = set(names)
    while waiting:
        for node in clients.core.list_node().items:
            ready = any(
                c.type == "Ready" and c.status == "True" for c in node.status.conditions or []
            )
            if ready and not node.spec.taints:
                waiting.discard(node.metadata.name)
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise PlatformError(
                f"nodes not Ready and untainted after {timeout:.0f}s: {', '.join(sorted(waiting))}"
            )
        time.sleep(0.25)


def cleanup(state: Mapping[str, Any], binaries: Mapping[str, Path]) -> None:
    """After a crash: stop the cluster recorded in `state` (from `KwokProvider.state`)."""
    KwokctlCluster(str(state["cluster"]), Path(state["workdir"]), binaries).delete()
