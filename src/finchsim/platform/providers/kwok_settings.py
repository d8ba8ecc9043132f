"""The kwok platform's settings (`cluster/kwok/cluster.yaml`, `kind: KwokCluster`).

They say what a real cluster would supply itself: the node pools and the control plane's
timings, Kubernetes' defaults unless changed there or by a test's copy of the file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from kubernetes.utils.quantity import parse_quantity
from pydantic import Field, field_validator

from finchsim.durations import parse_duration
from finchsim.inputs import Document, Strict, load_document
from finchsim.platform.controlplane.kwokctl import ControlPlaneTimings

SETTINGS_FILE = "cluster/kwok/cluster.yaml"


def _duration(value: str) -> str:
    parse_duration(value)  # ValueError names the expected form
    return value


class NodePool(Strict):
    """`count` identical nodes, spread round-robin over `zones` (topology.kubernetes.io/zone)."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40)
    count: int = Field(ge=1, le=5000)
    cpu: str = "2"  # allocatable, a Kubernetes quantity
    memory: str = "4Gi"
    pods: int = Field(default=110, ge=1)
    zones: tuple[str, ...] = ("zone-a",)
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: str) -> str:
        parse_quantity(value)  # raises ValueError with the offending text
        return value


class Timings(Strict):
    """Control-plane timings as Prometheus-style durations (Kubernetes 1.34 defaults)."""

    nodeMonitorGracePeriod: str = "50s"
    nodeMonitorPeriod: str = "5s"
    nodeLeaseDuration: str = "40s"
    hpaSyncPeriod: str = "15s"
    hpaDownscaleStabilization: str = "5m"
    hpaCpuInitializationPeriod: str = "5m"
    hpaInitialReadinessDelay: str = "30s"
    metricsResolution: str = "15s"
    # How long pods stay bound to a NotReady / unreachable node (DefaultTolerationSeconds).
    notReadyToleration: str = "5m"
    unreachableToleration: str = "5m"

    _durations = field_validator(
        "nodeMonitorGracePeriod",
        "nodeMonitorPeriod",
        "nodeLeaseDuration",
        "hpaSyncPeriod",
        "hpaDownscaleStabilization",
        "hpaCpuInitializationPeriod",
        "hpaInitialReadinessDelay",
        "metricsResolution",
        "notReadyToleration",
        "unreachableToleration",
    )(_duration)

    def controlplane(self) -> ControlPlaneTimings:
        return ControlPlaneTimings(
            node_monitor_grace_period=parse_duration(self.nodeMonitorGracePeriod),
            node_monitor_period=parse_duration(self.nodeMonitorPeriod),
            node_lease_duration=round(parse_duration(self.nodeLeaseDuration)),
            hpa_sync_period=parse_duration(self.hpaSyncPeriod),
            hpa_downscale_stabilization=parse_duration(self.hpaDownscaleStabilization),
            hpa_cpu_initialization_period=parse_duration(self.hpaCpuInitializationPeriod),
            hpa_initial_readiness_delay=parse_duration(self.hpaInitialReadinessDelay),
            metrics_resolution=parse_duration(self.metricsResolution),
            not_ready_toleration=round(parse_duration(self.notReadyToleration)),
            unreachable_toleration=round(parse_duration(self.unreachableToleration)),
        )


class KwokClusterSettings(Document):
    kind: Literal["KwokCluster"]
    nodePools: tuple[NodePool, ...] = Field(min_length=1)
    timings: Timings = Timings()


def load_kwok_settings(path: Path, shown_as: str | None = None) -> KwokClusterSettings:
    """Load the settings file; InputError lists every problem with its field."""
    return load_document(path, KwokClusterSettings, shown_as)
