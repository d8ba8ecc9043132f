"""The HPA controller's data: its flags, typed `spec.behavior`, what it reads, what it decides.

`ControllerSettings` (the kube-controller-manager flags), `Behavior` and its rules (filled in by
`hpa_behavior.parse_behavior`), `PodSample` (one pod at a sync), `HpaState` (the memory kept
between syncs) and the outputs `MetricResult` and `Decision`. Plain frozen dataclasses, no logic
beyond the decision's `rescale` and `record()`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

# ---- the HPA spec as the controller reads it (autoscaling/v2, Resource metrics) -------------


@dataclass(frozen=True)
class HpaMetric:
    resource: str  # cpu | memory
    utilization: int  # averageUtilization: percent of requests


@dataclass(frozen=True)
class Hpa:
    name: str
    target: str  # the scale target's name (a Deployment or StatefulSet)
    min_replicas: int
    max_replicas: int
    metrics: tuple[HpaMetric, ...]
    behavior: dict[str, Any] = field(default_factory=dict)  # spec.behavior as written


SYNC_PERIOD_SECONDS = 15.0  # --horizontal-pod-autoscaler-sync-period: the caller's loop period
DEFAULT_METRICS = (HpaMetric("cpu", 80),)  # autoscaling/v2 defaulting when spec.metrics is empty


@dataclass(frozen=True)
class ControllerSettings:
    """The kube-controller-manager flags that shape every HPA, with their defaults."""

    # each field is the flag --horizontal-pod-autoscaler-<field with dashes>
    tolerance: float = 0.1
    cpu_initialization_period: float = 300.0
    initial_readiness_delay: float = 30.0
    downscale_stabilization: float = 300.0
    # feature gate HPAConfigurableTolerance: alpha (off) in 1.33-1.34, beta (on) from 1.35;
    # off, the API server drops `behavior.*.tolerance` and the flag's tolerance applies
    configurable_tolerance: bool = False


DEFAULT_SETTINGS = ControllerSettings()


# ---- spec.behavior, typed --------------------------------------------------------------------


@dataclass(frozen=True)
class ScalingPolicy:
    type: str  # Pods | Percent
    value: int
    period_seconds: int

    def __str__(self) -> str:
        return f"{self.type}={self.value}/{self.period_seconds}s"


@dataclass(frozen=True)
class ScalingRules:
    stabilization_window_seconds: float
    select_policy: str  # Max | Min | Disabled
    policies: tuple[ScalingPolicy, ...]
    tolerance: float | None = None  # None: ControllerSettings.tolerance


@dataclass(frozen=True)
class Behavior:
    scale_up: ScalingRules
    scale_down: ScalingRules


# ---- inputs, state, outputs ------------------------------------------------------------------


@dataclass(frozen=True)
class PodSample:
    """One pod of the scale target as the controller sees it at a sync.

    `usage` and `requests` are keyed by resource: "cpu" in millicores, "memory" in bytes; a
    resource missing from `usage` means metrics-server has no sample for the pod, one missing
    from `requests` means a container of the pod has no request. `ready_transition` is the
    Ready condition's lastTransitionTime (when it last became ready, or unready); None means the
    pod has no Ready condition yet. `sample_time` is when the usage was measured (None: `now`) and
    `sample_window` the span it averages (metrics-server's resolution)."""

    name: str
    ready: bool
    start_time: float | None
    ready_transition: float | None
    usage: Mapping[str, int] = field(default_factory=dict)
    requests: Mapping[str, int] = field(default_factory=dict)
    phase: str = "Running"  # Pending | Running | Succeeded | Failed
    deleting: bool = False  # has a deletion timestamp
    sample_time: float | None = None
    sample_window: float = 15.0


@dataclass(frozen=True)
class ScaleEvent:
    time: float
    change: int  # replicas added (scale-up list) or removed (scale-down list), > 0
    outdated: bool = False  # older than the longest policy period: its slot may be reused


@dataclass(frozen=True)
class HpaState:
    """What the controller keeps in memory between syncs; start with `HpaState()`."""

    recommendations: tuple[tuple[float, int], ...] = ()  # (time, unstabilised recommendation)
    scale_up_events: tuple[ScaleEvent, ...] = ()
    scale_down_events: tuple[ScaleEvent, ...] = ()


@dataclass(frozen=True)
class MetricResult:
    """One metric's proposal and the numbers behind it (proposal None when not computable)."""

    resource: str
    target: int  # averageUtilization, % of requests
    proposal: int | None = None
    utilization: int | None = None  # % of requests over the pods with a usable sample
    average_usage: int | None = None  # per pod: millicores or bytes
    ratio: float | None = None  # utilization / target
    recomputed_utilization: int | None = None  # with missing / not-yet-ready pods filled in
    recomputed_ratio: float | None = None
    ready_pods: int = 0
    unready_pods: tuple[str, ...] = ()
    missing_pods: tuple[str, ...] = ()
    ignored_pods: tuple[str, ...] = ()
    note: str = ""
    error: str | None = None


@dataclass(frozen=True)
class Decision:
    """One sync: every input, every intermediate number, the outcome and the next state."""

    hpa: str
    now: float
    current_replicas: int
    min_replicas: int
    max_replicas: int
    pods: tuple[PodSample, ...]
    behavior: Behavior | None
    metrics: tuple[MetricResult, ...]
    proposal: int | None  # the largest metric proposal
    stabilized: int | None
    rate_limit: int | None  # the policy (or legacy) bound in the direction of change
    limited_by: str  # the ScalingLimited condition reason, e.g. ScaleUpLimit, TooManyReplicas
    final_replicas: int
    reason: str
    state: HpaState

    @property
    def rescale(self) -> bool:
        return self.final_replicas != self.current_replicas

    def record(self) -> dict[str, Any]:
        """The decision as plain data, for a JSON log line."""
        return asdict(self)
