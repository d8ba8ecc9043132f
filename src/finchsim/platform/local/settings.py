"""The local platform's own settings (`cluster/local/platform.yaml`), as a strict model.

They say what Kubernetes would take from the cluster itself: the nodes and their sizes, and the
controllers' timings (all Kubernetes defaults unless changed here or by a test)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from finchsim.durations import positive_duration
from finchsim.inputs import Document, Strict, load_document
from finchsim.platform.fields import parse_quantity


class NodeGroup(Strict):
    count: int = Field(default=3, ge=1, le=20)
    cpu: str = "2"  # allocatable, Kubernetes quantity
    memory: str = "4Gi"
    zones: tuple[str, ...] = ("zone-a", "zone-b", "zone-c")

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: str) -> str:
        if parse_quantity(value) <= 0:  # raises ValueError naming an invalid quantity
            raise ValueError(f"must be greater than 0, got {value!r}")
        return value


class Timings(Strict):
    """Controller timings in seconds (Kubernetes defaults)."""

    hpaSyncPeriod: float = Field(default=15.0, gt=0)  # --horizontal-pod-autoscaler-sync-period
    hpaDownscaleStabilization: float = Field(default=300.0, ge=0)
    hpaCpuInitializationPeriod: float = Field(default=300.0, ge=0)
    hpaInitialReadinessDelay: float = Field(default=30.0, ge=0)
    # Node lifecycle: NotReady after the grace period, pods evicted after the toleration
    # (node.kubernetes.io/not-ready:NoExecute tolerationSeconds=300 added to every pod).
    nodeMonitorGracePeriod: float = Field(default=50.0, ge=0)
    podEvictionTimeout: float = Field(default=300.0, ge=0)
    metricsResolution: float = Field(default=15.0, gt=0)  # metrics-server's scrape window
    # The kubelet's --volume-stats-agg-period: how stale kubelet_volume_stats_* may be.
    volumeStatsAggPeriod: float = Field(default=60.0, gt=0)
    # Prometheus' global scrape and rule evaluation interval, handed to it as written: shorter
    # than the cluster's 15s for short local runs. Prometheus' own grammar (finchsim.durations);
    # not "0", which Prometheus would silently turn into its 1m default.
    scrapeInterval: str = "5s"

    _check_interval = field_validator("scrapeInterval")(positive_duration)


class LocalPlatformSettings(Document):
    kind: Literal["LocalPlatform"]
    nodes: NodeGroup = NodeGroup()
    timings: Timings = Timings()
    enforceLimits: bool = True  # cgroup CPU/memory limits where the machine allows


def load_settings(path: Path, shown_as: str | None = None) -> LocalPlatformSettings:
    """Load the settings file; InputError lists every problem with its field."""
    return load_document(path, LocalPlatformSettings, shown_as)
