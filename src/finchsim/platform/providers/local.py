"""The `local` platform's provider: a real control plane on 127.0.0.1 and finch's kubelet
running the pods as real processes.

kwokctl's binary runtime starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
metrics-server from the pinned cache. Its kwok controller is kept: with `--disable
kwok-controller` kwokctl refuses its metrics-server component, and starting metrics-server
ourselves would mean its certificates, its APIService and its start order; the kwok controller
already manages only nodes labelled `finchsim.io/kubelet=up` (kwokctl.py), and our nodes carry
`finchsim.io/kubelet=finchsim`, so it leaves them alone (about 60 MiB for that simplicity).
Flags that differ from the kwok platform:
- `--service-cluster-ip-range=127.96.0.0/16`: Services get loopback virtual IPs;
- kube-controller-manager without the endpoint controllers: EndpointSlices reject loopback
  addresses ("may not be in the loopback range"), so they would only fail; whatever needs
  endpoints computes them from the pods and their readiness;
- the API server (logs) and metrics-server reach the kubelet at the node's InternalIP (its
  loopback address), never by name; metrics-server accepts the kubelet's self-signed
  certificate (`--kubelet-insecure-tls`, which kwokctl already passes), and the API server
  has no `--kubelet-certificate-authority` to check it against.
Namespaces get Pod Security `restricted` enforcement before the overlay is applied. A
control-plane process that exits is started again (`dead`), with the budget of `Supervised`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from finchsim.errors import CommandError, PlatformError
from finchsim.platform.base import Capability
from finchsim.platform.controlplane.kwokctl import (
    ControlPlaneTimings,
    KwokctlCluster,
    kwokctl_config,
)
from finchsim.platform.kubelet import Kubelet, KubeletConfig, cleanup_kubelet
from finchsim.platform.kubelet.addresses import SERVICE_RANGE
from finchsim.platform.kubernetes import provisioner
from finchsim.platform.kubernetes.apply import apply_objects
from finchsim.platform.kubernetes.client import Clients, api_message
from finchsim.platform.kubernetes.provider import KUBERNETES_CAPABILITIES, Provider
from finchsim.platform.local.settings import LocalPlatformSettings
from finchsim.platform.local.supervisor import MAX_RESTARTS, RESTART_WINDOW_S
from finchsim.platform.manifests import Rendered
from finchsim.platform.providers.kwok import _wait_nodes_schedulable
from finchsim.platform.providers.local_edge import LocalEdge
from finchsim.platform.providers.local_lock import MachineLock
from finchsim.project import Project

PSA = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
ENDPOINT_CONTROLLERS_OFF = (
    "*,-endpoints-controller,-endpointslice-controller,-endpointslice-mirroring-controller"
)


def control_plane_flags() -> dict[str, dict[str, str]]:
    return {
        "kube-apiserver": {
            "service-cluster-ip-range": SERVICE_RANGE,
            # logs/exec/port-forward reach the kubelet at its loopback InternalIP, never by
            # the node's name (the default tries Hostname first: a DNS query off the machine).
            "kubelet-preferred-address-types": "InternalIP",
        },
        "kube-controller-manager": {"controllers": ENDPOINT_CONTROLLERS_OFF},
        "metrics-server": {"kubelet-preferred-address-types": "InternalIP"},
    }


def timings_of(settings: LocalPlatformSettings, lease_seconds: int) -> ControlPlaneTimings:
    t = settings.timings
    return ControlPlaneTimings(
        node_monitor_grace_period=t.nodeMonitorGracePeriod,
        node_lease_duration=lease_seconds,
        hpa_sync_period=t.hpaSyncPeriod,
        hpa_downscale_stabilization=t.hpaDownscaleStabilization,
        hpa_cpu_initialization_period=t.hpaCpuInitializationPeriod,
        hpa_initial_readiness_delay=t.hpaInitialReadinessDelay,
        metrics_resolution=t.metricsResolution,
        not_ready_toleration=int(t.podEvictionTimeout),
        unreachable_toleration=int(t.podEvictionTimeout),
    )


class LocalProvider(Provider):
    name = "local"
    capabilities = KUBERNETES_CAPABILITIES | {
        Capability.NODE_FAILURE,
        Capability.PROCESSES,
        Capability.INGRESS,
        Capability.PROMETHEUS,
        Capability.EXEC,
        Capability.KILL_CONTAINER,
    }

    def __init__(
        self,
        settings: LocalPlatformSettings,
        binaries: Mapping[str, Path],
        storage: list[Rendered],
        project_root: Path,
        cluster_name: str = "finchsim",
        lease_seconds: int = 40,
        project: Project | None = None,
    ) -> None:
        self.settings = settings
        self.binaries = binaries
        self.storage = storage
        self.project_root = project_root
        self.cluster_name = cluster_name
        self.lease_seconds = lease_seconds
        self.cluster: KwokctlCluster | None = None
        self.kubelet: Kubelet | None = None
        self.project = project  # with a project: the edge (Service proxy, ingress, monitoring)
        self.edge: LocalEdge | None = None
        self.run_dir: Path | None = None
        self.log: Callable[[str], None] = lambda _m: None
        self.control_plane_restarts: list[float] = []  # monotonic times, as Supervised keeps
        self.machine_lock = MachineLock()

    def create(self, run_dir: Path, log: Callable[[str], None]) -> Path:
        self.run_dir, self.log = run_dir, log
        self.machine_lock.acquire(f"pid {os.getpid()}, run {run_dir.name}, {self.project_root}")
        # Containers running as their runAsUser must reach their own directories below it.
        run_dir.chmod(0o711)
        self.cluster = KwokctlCluster(self.cluster_name, run_dir / "kwok", self.binaries)
        log("starting the control plane (etcd, kube-apiserver, controllers, metrics-server)")
        config = kwokctl_config(
            self.binaries,
            timings_of(self.settings, self.lease_seconds),
            extra_flags=control_plane_flags(),
            load_model=False,
        )
        return self.cluster.create(config)

    def prepare(self, clients: Clients, namespaces: list[str]) -> None:
        problems = apply_objects(clients, self.storage)
        if problems:
            raise PlatformError("; ".join(str(p) for p in problems))
        for namespace in namespaces:
            restricted(clients, namespace)
        assert self.run_dir is not None
        self.kubelet = Kubelet(
            clients,
            KubeletConfig(
                nodes=self.settings.nodes,
                run_dir=self.run_dir / "kubelet",
                run_id=self.run_dir.name,
                project_root=self.project_root,
                lease_seconds=self.lease_seconds,
                enforce_limits=self.settings.enforceLimits,
                volume_stats_period=self.settings.timings.volumeStatsAggPeriod,
            ),
            self.log,
        )
        names = self.kubelet.start()
        self.log(f"kubelet: registered {', '.join(names)}")
        _wait_nodes_schedulable(clients, names)
        if self.project is not None:
            self.edge = LocalEdge(
                self.project,
                self.run_dir,
                namespaces,
                self.settings.timings.scrapeInterval,
                self.log,
                self.kubelet.record_process,
            )
            self.edge.start(clients)

    def reconcile(self, clients: Clients) -> None:
        provisioner.reconcile(clients)
        if self.edge is not None:
            self.edge.reconcile(clients)

    def settle(self, clients: Clients) -> None:
        if self.edge is not None:
            self.edge.sync(clients)

    def ingress_url(self, host: str) -> str:
        if self.edge is None:
            raise PlatformError("the local platform runs its ingress only when up")
        return self.edge.ingress_url(host)

    def prometheus_url(self) -> str:
        if self.edge is None:
            raise PlatformError("the local platform runs its Prometheus only when up")
        return self.edge.prometheus_url()

    def dead(self) -> str | None:
        """Why the platform cannot go on, or None. A control-plane process that exited is
        started again, as a static pod's kubelet would (its state is in etcd or on disk), and
        told in the log; only one that keeps exiting ends the run."""
        if self.kubelet is not None and (why := self.kubelet.dead()) is not None:
            return why
        if self.cluster is None or not (dead := self.cluster.dead_components()):
            return None
        tails = self.cluster.log_tails(only=dead, lines=3)
        now = time.monotonic()
        self.control_plane_restarts = [
            t for t in self.control_plane_restarts if now - t < RESTART_WINDOW_S
        ]
        if len(self.control_plane_restarts) >= MAX_RESTARTS:
            return (
                f"control-plane process(es) keep exiting: {', '.join(dead)} "
                f"({MAX_RESTARTS} restarts in {RESTART_WINDOW_S:.0f} s)\n{tails}"
            )
        self.control_plane_restarts.append(now)
        self.log(f"control plane: {', '.join(dead)} exited; starting again\n{tails}")
        try:
            self.cluster.restart_dead()
        except CommandError as exc:
            return f"control-plane process(es) died and did not start again: {exc}\n{tails}"
        self.log(f"control plane: {', '.join(dead)} restarted")
        return None

    def _kubelet(self) -> Kubelet:
        if self.kubelet is None:
            raise PlatformError("the local platform is not up")
        return self.kubelet

    def exec_command(
        self, clients: Clients, namespace: str, pod: str, argv: Sequence[str], timeout: float
    ) -> str:
        return self._kubelet().exec(namespace, pod, argv, timeout)

    def kill_container(self, clients: Clients, namespace: str, pod: str, container: str) -> None:
        self._kubelet().kill_container(namespace, pod, container)

    def fail_node(self, clients: Clients, node: str) -> None:
        self._kubelet().fail_node(node)

    def recover_node(self, clients: Clients, node: str) -> None:
        self._kubelet().recover_node(node)

    def delete(self, clients: Clients | None) -> None:
        if self.edge is not None:
            self.edge.stop()
            self.edge = None
        if self.kubelet is not None:
            self.kubelet.stop()
            self.kubelet = None
        if self.cluster is not None:
            self.cluster.delete()
        self.machine_lock.release()

    def state(self) -> dict[str, Any]:
        assert self.cluster is not None and self.run_dir is not None
        return {
            "cluster": self.cluster.name,
            "workdir": str(self.cluster.workdir),
            "kubelet_dir": str(self.run_dir / "kubelet"),
            "run_id": self.run_dir.name,
        }


def restricted(clients: Clients, namespace: str) -> None:
    """Create `namespace` (or label it) with Pod Security `restricted` enforcement."""
    body = {"metadata": {"name": namespace, "labels": PSA}}
    try:
        clients.core.create_namespace(body)
    except ApiException as exc:
        if exc.status != 409:
            raise PlatformError(f"namespace {namespace}: {api_message(exc)}") from exc
        clients.core.patch_namespace(namespace, {"metadata": {"labels": PSA}})


def cleanup(state: Mapping[str, Any], binaries: Mapping[str, Path]) -> None:
    """After a crash: kill the kubelet's recorded process groups, remove its cgroups, stop the
    control plane (from `LocalProvider.state`)."""
    cleanup_kubelet(Path(state["kubelet_dir"]), str(state["run_id"]))
    KwokctlCluster(str(state["cluster"]), Path(state["workdir"]), binaries).delete()
