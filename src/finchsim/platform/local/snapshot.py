"""What the local platform knows at one instant, in Kubernetes' terms.

The controller fills a `Snapshot` every sampling tick; the metrics exporter, the live view and
the `Platform` query methods all read it, so they can never disagree."""

from __future__ import annotations

from dataclasses import dataclass, field

from finchsim.platform.base import NodeState
from finchsim.platform.local.traffic import IngressCount, Rates


@dataclass(frozen=True)
class ContainerSnapshot:
    name: str
    cpu_seconds: float  # cumulative, like cAdvisor's container_cpu_usage_seconds_total
    memory_working_set: int
    restarts: int
    cpu_request_m: int
    cpu_limit_m: int
    memory_request: int
    memory_limit: int
    throttled_periods: int = 0
    periods: int = 0
    throttled_seconds: float = 0.0
    oom_events: int = 0
    running: bool = True


@dataclass(frozen=True)
class PodSnapshot:
    namespace: str
    name: str
    owner_kind: str  # ReplicaSet | StatefulSet | Job
    owner: str  # the workload's name (Deployment/StatefulSet/CronJob)
    node: str | None
    phase: str
    ready: bool
    created: float  # unix time
    containers: tuple[ContainerSnapshot, ...] = ()
    reason: str = ""  # e.g. the scheduler's message while Pending


@dataclass(frozen=True)
class WorkloadSnapshot:
    kind: str  # Deployment | StatefulSet
    namespace: str
    name: str
    desired: int
    current: int
    ready: int
    available: int
    updated: int


@dataclass(frozen=True)
class HpaSnapshot:
    namespace: str
    name: str
    target: str
    min_replicas: int
    max_replicas: int
    current: int
    desired: int
    targets: dict[str, int]  # resource -> target utilisation %
    utilization: dict[str, float]  # resource -> last measured utilisation %


@dataclass(frozen=True)
class CronJobSnapshot:
    namespace: str
    name: str
    created: float
    last_schedule: float | None
    last_success: float | None


@dataclass(frozen=True)
class Snapshot:
    taken_at: float
    pods: tuple[PodSnapshot, ...] = ()
    nodes: tuple[NodeState, ...] = ()
    workloads: tuple[WorkloadSnapshot, ...] = ()
    hpas: tuple[HpaSnapshot, ...] = ()
    cronjobs: tuple[CronJobSnapshot, ...] = ()
    ingress: tuple[IngressCount, ...] = ()  # requests through the ingress since up
    ingress_rates: Rates = field(default_factory=Rates)  # over the last few seconds
