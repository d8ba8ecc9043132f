"""The local platform's own settings (`cluster/local/platform.yaml`), as a strict model.

They say what Kubernetes would take from the cluster itself: the nodes and their sizes, and the
controllers' timings (all Kubernetes defaults unless changed here or by a test)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from kubernetes.utils.quantity import parse_quantity
from pydantic import Field, field_validator

from finchsim.inputs import Document, Strict, load_document


class NodeGroup(Strict):
    count: int = Field(default=3, ge=1, le=20)
    cpu: str = "2"  # allocatable, Kubernetes quantity
    memory: str = "4Gi"
    zones: tuple[str, ...] = ("zone-a", "zone-b", "zone-c")

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: str) -> str:
        parse_quantity(value)  # raises ValueError with the offending text
        return value


class Timings(Strict):
    """Controller timings in seconds (Kubernetes defaults)."""

    hpaSyncPeriod: float = Field(default=15.0, gt=0)  # --horizontal-pod-autoscaler-sync-period
    hpaDownscaleStabilization: float = Field(default=300.0, ge=0)
    hpaCpuInitializationPeriod: float = Field(default=300.0, ge=0)
    hpaInitialReadinessDelay: float = Field(default=30.0, ge=0)
    # Node lifecycle: NotReady after the grace period, pods evicted after the toleration
    # (node.kubernetes.io/not-ready:NoExecute tolerationSeconds=300 added to every pod).
    nodeMonitorGracePeriod: float = Field(default=40.0, ge=0)
    podEvictionTimeout: float = Field(default=300.0, ge=0)
    metricsResolution: float = Field(default=15.0, gt=0)  # metrics-server's scrape window
    scrapeInterval: str = "5s"  # Prometheus, shorter than the cluster's 15s: short local runs


class LocalPlatformSettings(Document):
    kind: Literal["LocalPlatform"]
    nodes: NodeGroup = NodeGroup()
    timings: Timings = Timings()
    enforceLimits: bool = True  # cgroup CPU/memory limits where the machine allows


def load_settings(path: Path, shown_as: str | None = None) -> LocalPlatformSettings:
    """Load the settings file; InputError lists every problem with its field."""
    return load_document(path, LocalPlatformSettings, shown_as)
