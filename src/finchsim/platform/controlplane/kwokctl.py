"""A real Kubernetes control plane as plain processes, started by kwokctl's binary runtime.

kwokctl (kubernetes-sigs/kwok) starts etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, the kwok controller and metrics-server from the pinned binaries in our cache,
writes their certificates, pid files, logs and a kubeconfig under its work directory, and stops
them again. We use it rather than starting the processes ourselves because it already knows
each component's flags, certificates and start order; we override only what must differ:
- every listener on 127.0.0.1 (`bindAddress`);
- the timings (node lease, node monitor, HPA) at Kubernetes' own defaults instead of kwokctl's
  scaled ones (its default `heartbeatFactor: 5` turns the 40 s lease into 200 s);
- the kwok controller manages only nodes labelled `finchsim.io/kubelet=up`, so a node can be
  failed by relabelling it: the watch then drops it, kwok releases its lease, and the real
  node-lifecycle controller takes it from there (kwok's own `manage-all-nodes` would keep
  heartbeating every node forever).

Everything lives under one work directory (`KWOK_WORKDIR`), so `delete` and a crash cleanup
find every process by its pid file."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import yaml

from finchsim.errors import CommandError, PlatformError
from finchsim.platform.ports import free_port
from finchsim.platform.tools import find_tool, run

KWOKCTL_API = "config.kwok.x-k8s.io/v1alpha1"
KWOK_API = "kwok.x-k8s.io/v1alpha1"
# The label the kwok controller selects the nodes it runs by (see the module docstring).
MANAGED_LABEL = "finchsim.io/kubelet"
MANAGED_UP = "up"
MANAGED_DOWN = "down"
# Per-container usage, written by the load model, read by kwok's usage expression below.
USAGE_ANNOTATION = {"cpu": "cpu.usage.finchsim.io/", "memory": "memory.usage.finchsim.io/"}
PORT_OPTIONS = (
    "kubeApiserverPort",
    "etcdPort",
    "etcdPeerPort",
    "kubeControllerManagerPort",
    "kubeSchedulerPort",
    "kwokControllerPort",
    "metricsServerPort",
)


@dataclass(frozen=True)
class ControlPlaneTimings:
    """kube-controller-manager and node heartbeat timings, in seconds (Kubernetes 1.34 defaults:
    pkg/controller/nodelifecycle/config/v1alpha1/defaults.go and
    pkg/controller/podautoscaler/config/v1alpha1/defaults.go)."""

    node_monitor_grace_period: float = 50.0
    node_monitor_period: float = 5.0
    node_lease_duration: int = 40  # the kubelet's nodeLeaseDurationSeconds
    node_status_update_frequency: float = 10.0
    hpa_sync_period: float = 15.0
    hpa_downscale_stabilization: float = 300.0
    hpa_cpu_initialization_period: float = 300.0
    hpa_initial_readiness_delay: float = 30.0
    hpa_tolerance: float = 0.1
    metrics_resolution: float = 15.0  # metrics-server --metric-resolution
    # kube-apiserver's DefaultTolerationSeconds admission: how long a pod stays on a NotReady
    # or unreachable node before the taint manager evicts it.
    not_ready_toleration: int = 300
    unreachable_toleration: int = 300


def _seconds(value: float) -> str:
    return f"{value:g}s"


def usage_config() -> dict[str, Any]:
    """kwok's ClusterResourceUsage: each container's CPU and memory from its pod's annotations
    (`cpu.usage.finchsim.io/<container>: 250m`), 1m / 1Mi when unset."""

    def expression(resource: str, default: str) -> str:
        key = f'"{USAGE_ANNOTATION[resource]}" + container.name'
        return (
            f"({key}) in pod.metadata.annotations"
            f" ? Quantity(pod.metadata.annotations[{key}]) : Quantity({default!r})"
        ).replace("'", '"')

    return {
        "apiVersion": KWOK_API,
        "kind": "ClusterResourceUsage",
        "metadata": {"name": "finchsim-load-model"},
        "spec": {
            "usages": [
                {
                    "usage": {
                        "cpu": {"expression": expression("cpu", "1m")},
                        "memory": {"expression": expression("memory", "1Mi")},
                    }
                }
            ]
        },
    }


def _args(component: str, values: Mapping[str, str]) -> list[dict[str, Any]]:
    """kwokctl `extraArgs`; `override` replaces a flag kwokctl already sets (else appended).
    An override of a flag kwokctl does not set is dropped silently, so it is per component."""
    return [
        {"key": k, "value": v, "override": (component, k) in OVERRIDDEN} for k, v in values.items()
    ]


# Flags kwokctl itself passes, so ours must replace its value rather than be appended.
OVERRIDDEN = {
    ("kwok-controller", "manage-all-nodes"),
    ("metrics-server", "metric-resolution"),
    ("metrics-server", "kubelet-preferred-address-types"),
}


def kwokctl_config(
    binaries: Mapping[str, Path],
    timings: ControlPlaneTimings,
    *,
    controllers: bool = True,
    extra_flags: Mapping[str, Mapping[str, str]] | None = None,
    load_model: bool = True,
) -> list[dict[str, Any]]:
    """The documents of a kwokctl `--config` file for a binary-runtime cluster on 127.0.0.1:
    the whole control plane with metrics-server and the load model's usage, or (controllers
    False) etcd and kube-apiserver alone, for checking objects. `extra_flags` adds (or
    replaces) component flags, by component name; `load_model` False leaves out kwok's usage
    expressions (nodes that run real processes measure their own)."""
    options: dict[str, Any] = {
        "runtime": "binary",
        "bindAddress": "127.0.0.1",
        # Our own free ports: kwokctl probes downwards from 32767, so two clusters started at
        # the same moment (or a port in TIME_WAIT) would pick the same ones.
        **{option: free_port() for option in PORT_OPTIONS},
        "kubeApiserverBinary": str(binaries["kube-apiserver"]),
        "kubeControllerManagerBinary": str(binaries["kube-controller-manager"]),
        "kubeSchedulerBinary": str(binaries["kube-scheduler"]),
        "etcdBinary": str(binaries["etcd"]),
        "kwokControllerBinary": str(binaries["kwok"]),
        "kubectlBinary": find_tool("kubectl"),
        "heartbeatFactor": 1,
        "nodeLeaseDurationSeconds": timings.node_lease_duration,
        "nodeStatusUpdateFrequencyMilliseconds": int(timings.node_status_update_frequency * 1000),
        "kubeControllerManagerNodeMonitorGracePeriodMilliseconds": int(
            timings.node_monitor_grace_period * 1000
        ),
        "kubeControllerManagerNodeMonitorPeriodMilliseconds": int(
            timings.node_monitor_period * 1000
        ),
    }
    if controllers:
        options["metricsServerBinary"] = str(binaries["metrics-server"])
        options["enable"] = ["metrics-server"]
    else:
        options["disable"] = ["kube-controller-manager", "kube-scheduler", "kwok-controller"]
    flags = {
        "kube-controller-manager": {
            "horizontal-pod-autoscaler-sync-period": _seconds(timings.hpa_sync_period),
            "horizontal-pod-autoscaler-downscale-stabilization": _seconds(
                timings.hpa_downscale_stabilization
            ),
            "horizontal-pod-autoscaler-cpu-initialization-period": _seconds(
                timings.hpa_cpu_initialization_period
            ),
            "horizontal-pod-autoscaler-initial-readiness-delay": _seconds(
                timings.hpa_initial_readiness_delay
            ),
            "horizontal-pod-autoscaler-tolerance": f"{timings.hpa_tolerance:g}",
        },
        "kwok-controller": {
            "manage-all-nodes": "false",
            "manage-nodes-with-label-selector": f"{MANAGED_LABEL}={MANAGED_UP}",
        },
        "metrics-server": {"metric-resolution": _seconds(timings.metrics_resolution)},
        "kube-apiserver": {
            "default-not-ready-toleration-seconds": str(timings.not_ready_toleration),
            "default-unreachable-toleration-seconds": str(timings.unreachable_toleration),
        },
    }
    for component, values in (extra_flags or {}).items():
        flags[component] = {**flags.get(component, {}), **values}
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": KWOKCTL_API,
            "kind": "KwokctlConfiguration",
            "options": options,
            "componentsPatches": [
                {"name": name, "extraArgs": _args(name, values)} for name, values in flags.items()
            ],
        }
    ]
    if controllers and load_model:
        docs.append(usage_config())
    return docs


PID_FILE_SLACK_S = 10.0


class KwokctlCluster:
    """One kwokctl cluster in its own work directory."""

    def __init__(self, name: str, workdir: Path, binaries: Mapping[str, Path]) -> None:
        self.name = name
        self.workdir = workdir
        self.binaries = binaries

    @property
    def cluster_dir(self) -> Path:
        return self.workdir / "clusters" / self.name

    @property
    def kubeconfig(self) -> Path:
        return self.cluster_dir / "kubeconfig.yaml"

    @property
    def logs(self) -> Path:
        return self.cluster_dir / "logs"

    def _kwokctl(self, args: Sequence[str], timeout: float) -> str:
        env = {**os.environ, "KWOK_WORKDIR": str(self.workdir)}
        argv = [str(self.binaries["kwokctl"]), *args]
        return run(argv, timeout=timeout, env=env)

    def create(self, config: list[dict[str, Any]], timeout: float = 120.0) -> Path:
        """Start the cluster and wait until its API server is ready; return the kubeconfig.

        Raises PlatformError with the failing component's log tail (and leaves nothing
        running) when it does not come up."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / f"{self.name}-kwokctl.yaml"
        config_path.write_text(yaml.safe_dump_all(config, sort_keys=False))
        try:
            self._kwokctl(
                [
                    "create",
                    "cluster",
                    "--name",
                    self.name,
                    "--config",
                    str(config_path),
                    "--wait",
                    f"{int(timeout)}s",
                    "--kubeconfig=",  # never touch the user's ~/.kube/config
                ],
                timeout=timeout + 30,
            )
            self.restart_dead(timeout)
            self._private()
        except CommandError as exc:
            tails = self.log_tails()
            self.delete()
            raise PlatformError(
                f"the control plane did not start: {exc}\n{tails}".rstrip()
            ) from exc
        return self.kubeconfig

    def _private(self) -> None:
        """The cluster's credentials (the kubeconfig, the CA's and admin's keys) readable by us
        alone: kwokctl writes them 0640/0644."""
        for path in [self.kubeconfig, *(self.cluster_dir / "pki").glob("*.key")]:
            path.chmod(0o600)

    def restart_dead(self, timeout: float = 120.0) -> None:
        """Start again the components that exited, once the API server serves.

        kwokctl starts each dependency group without waiting for the one before to serve
        (kwok v0.7.0, runtime/binary/cluster.go startComponents), so metrics-server can exit
        on "connection refused" while the API server starts; `start cluster` starts only what
        is not running (startComponent skips a running one). kwokctl counts a zombie as
        running (a signal-0 probe), and where PID 1 does not reap orphans one stays, so the
        pid files of the dead go first."""
        dead = self.dead_components()
        for name in dead:
            (self.cluster_dir / "pids" / f"{name}.pid").unlink(missing_ok=True)
        if dead:
            self._kwokctl(
                ["start", "cluster", "--name", self.name, "--wait", f"{int(timeout)}s"],
                timeout=timeout + 30,
            )

    def log_tails(self, lines: int = 5, only: Sequence[str] | None = None) -> str:
        """The last lines of each component's log (or of those in `only`), for an error."""
        parts = []
        for log in sorted(self.logs.glob("*.log")) if self.logs.is_dir() else []:
            if only is not None and log.stem not in only:
                continue
            tail = log.read_text(errors="replace").strip().splitlines()[-lines:]
            if tail:
                parts.append(f"{log.stem}: " + "\n  ".join(tail))
        return "\n".join(parts)

    def pids(self) -> dict[str, int]:
        """The pid of each component, from kwokctl's pid files — only where that pid is still
        the process kwokctl started: it started within seconds of the file being written
        (kwokctl writes it right after the fork), so a pid reused since is never signalled."""
        found = {}
        for path in sorted((self.cluster_dir / "pids").glob("*.pid")):
            with contextlib.suppress(ValueError, OSError, psutil.Error):
                pid = int(path.read_text().strip())
                started = psutil.Process(pid).create_time()
                if abs(started - path.stat().st_mtime) < PID_FILE_SLACK_S:
                    found[path.stem] = pid
        return found

    def delete(self) -> None:
        """Stop every component and remove the cluster's files. Idempotent, and safe after a
        crash: processes kwokctl did not stop are killed by their recorded pids."""
        pids = self.pids()
        if self.cluster_dir.exists():
            with contextlib.suppress(PlatformError):
                self._kwokctl(
                    ["delete", "cluster", "--name", self.name, "--kubeconfig="], timeout=60
                )
        kill_recorded(pids)

    def dead_components(self) -> list[str]:
        """Components whose process has died, by name (empty when all run)."""
        recorded = sorted(path.stem for path in (self.cluster_dir / "pids").glob("*.pid"))
        ours = self.pids()
        return [name for name in recorded if name not in ours or not _alive(ours[name])]


def _alive(pid: int) -> bool:
    try:
        status: str = psutil.Process(pid).status()
        return bool(status != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def kill_recorded(pids: Mapping[str, int], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `grace`, every recorded pid still alive."""
    alive = {name: pid for name, pid in pids.items() if _alive(pid)}
    for pid in alive.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_alive(pid) for pid in alive.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in alive.values():
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
