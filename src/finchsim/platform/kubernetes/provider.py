"""The provider interface: what makes a Kubernetes cluster exist for `KubernetesPlatform`.

A provider creates (or finds) the cluster, prepares what a real cluster would already have
(nodes, storage classes), fails and recovers nodes where it can, and removes what it created.
Everything else — applying the overlay, waiting, scaling, draining, jobs, events — is the same
on every cluster and lives in `KubernetesPlatform`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from finchsim.errors import PlatformError
from finchsim.platform.base import Capability
from finchsim.platform.kubernetes.client import Clients

# What every cluster reached through the kubernetes client can do.
KUBERNETES_CAPABILITIES = frozenset(
    {Capability.DRAIN, Capability.JOBS, Capability.EVENTS, Capability.KUBECONFIG}
)


class Provider(ABC):
    name: str
    capabilities: frozenset[Capability] = KUBERNETES_CAPABILITIES
    # Apply cluster/monitoring too (a real cluster runs its Prometheus as pods).
    with_monitoring: bool = False

    @abstractmethod
    def create(self, run_dir: Path, log: Callable[[str], None]) -> Path:
        """Make the cluster reachable and return its kubeconfig. Raises PlatformError (leaving
        nothing behind) when it cannot."""

    def context(self) -> str | None:
        """The kubeconfig context to use (None: the file's current context)."""
        return None

    def prepare(self, clients: Clients, namespaces: list[str]) -> None:  # noqa: B027
        """Before the overlay is applied: supply what the cluster itself would have (nodes,
        storage classes), and refuse to touch `namespaces` that are not ours."""

    def reconcile(self, clients: Clients) -> None:  # noqa: B027
        """One round of the provider's own background duties (a volume provisioner, ...);
        called while the platform runs."""

    def settle(self, clients: Clients) -> None:  # noqa: B027
        """Once everything rolled out: let what follows the API catch up now rather than at
        its next sync, so that `up` returning means traffic is routed."""

    def dead(self) -> str | None:
        """Which part of the cluster died, or None while everything runs."""
        return None

    def fail_node(self, clients: Clients, node: str) -> None:
        raise PlatformError(f"the {self.name} platform cannot fail a node")

    def recover_node(self, clients: Clients, node: str) -> None:
        raise PlatformError(f"the {self.name} platform cannot recover a node")

    def exec_command(
        self, clients: Clients, namespace: str, pod: str, argv: Sequence[str], timeout: float
    ) -> str:
        """Run `argv` in the first container of `pod` (ready, found by the platform); return
        its output. Only a provider whose pods it runs itself (Capability.EXEC) can."""
        raise PlatformError(f"the {self.name} platform cannot exec")

    def kill_container(self, clients: Clients, namespace: str, pod: str, container: str) -> None:
        """SIGKILL one container's processes, its kubelet restarting it (KILL_CONTAINER)."""
        raise PlatformError(f"the {self.name} platform cannot kill a container")

    def ingress_url(self, host: str) -> str:
        """The loopback URL of the Ingress for `host` (Capability.INGRESS)."""
        raise PlatformError(f"the {self.name} platform has no ingress data plane")

    def prometheus_url(self) -> str:
        """The loopback URL of the Prometheus scraping the cluster (Capability.PROMETHEUS)."""
        raise PlatformError(f"the {self.name} platform runs no Prometheus")

    @abstractmethod
    def delete(self, clients: Clients | None) -> None:
        """Remove what `create` and `prepare` made. Idempotent; safe after a failed create."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """What a later `finchsim down` needs to clean up after a crash (JSON-able)."""
