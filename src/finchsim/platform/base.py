"""The one seam between what scenarios/analysis ask for and how a platform does it.

Every scenario action and every observer goes through `Platform`; nothing above this module asks
which platform ran. A backend implements the abstract methods below; each docstring is the
contract. States use Kubernetes' own words (Running, Pending, Ready, NotReady, ...).

Implementations are registered explicitly in `finchsim.platform.registry`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PodState:
    """One pod as `kubectl get pods -o wide` would show it."""

    namespace: str
    name: str
    owner: str  # the Deployment/StatefulSet/Job it belongs to
    node: str | None  # None while Pending
    phase: str  # Pending | Running | Succeeded | Failed
    ready: bool
    restarts: int = 0


@dataclass(frozen=True)
class NodeState:
    name: str
    ready: bool
    schedulable: bool
    cpu_allocatable_m: int
    memory_allocatable_bytes: int
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ComponentState:
    """A Deployment/StatefulSet: desired vs ready replicas."""

    namespace: str
    name: str
    desired: int
    ready: int
    available: int
    updated: int  # pods running the current template revision (rollout progress)


@dataclass(frozen=True)
class JobResult:
    name: str
    succeeded: bool
    duration_seconds: float
    output: str = ""
    reason: str = ""  # Complete, BackoffLimitExceeded, DeadlineExceeded, ...


class Platform(ABC):
    """A place the Finch topology runs: processes here, a kind cluster, any kubeconfig context."""

    name: str

    @abstractmethod
    def up(self) -> None:
        """Bring the whole topology to ready: every Deployment at its desired ready replicas,
        monitoring scraping. Raises PlatformError (and leaves nothing behind) if it cannot."""

    @abstractmethod
    def down(self) -> None:
        """Remove everything `up` created: processes, ports, clusters, temp dirs. Idempotent;
        safe to call on a half-started platform and when nothing runs."""

    @abstractmethod
    def components(self) -> list[ComponentState]:
        """Every workload with its desired/ready replicas."""

    @abstractmethod
    def pods(self) -> list[PodState]:
        """Every pod that exists now, including Pending ones."""

    @abstractmethod
    def nodes(self) -> list[NodeState]:
        """Every node with its readiness and allocatable resources."""

    @abstractmethod
    def scale(self, deployment: str, replicas: int) -> None:
        """Set a Deployment's desired replicas (an HPA may change it again)."""

    @abstractmethod
    def rollout(self, deployment: str) -> None:
        """Replace every pod of a workload with a new template revision (`kubectl rollout
        restart`), following its strategy (maxSurge/maxUnavailable, Recreate, or a
        StatefulSet's one-at-a-time). Returns at once; `components()` shows the progress."""

    @abstractmethod
    def kill_pod(self, pod: str) -> None:
        """Kill a pod abruptly (SIGKILL, like a node OOM or `kubectl delete --grace-period=0`);
        its controller recreates it."""

    @abstractmethod
    def fail_node(self, node: str) -> None:
        """The node stops abruptly: its pods die with it, it turns NotReady, and its pods are
        recreated elsewhere after the platform's eviction delays."""

    @abstractmethod
    def recover_node(self, node: str) -> None:
        """A failed node comes back (Ready): pods evicted meanwhile are gone for good, the
        others restart their containers."""

    @abstractmethod
    def drain_node(self, node: str, timeout: float = 300.0) -> None:
        """Cordon the node and evict its pods, honouring PodDisruptionBudgets; blocks until
        done. Raises PlatformError when a PDB forbids progress past the timeout."""

    @abstractmethod
    def uncordon_node(self, node: str) -> None:
        """Make a cordoned (drained) node schedulable again."""

    @abstractmethod
    def run_job(self, cronjob: str) -> JobResult:
        """Run a CronJob's job template once now (`kubectl create job --from=cronjob/...`) and
        wait for it to finish."""

    @abstractmethod
    def ingress_url(self, host: str) -> str:
        """The URL that reaches the Ingress rule for `host` from this machine (loopback)."""

    @abstractmethod
    def prometheus_url(self) -> str:
        """The URL of the Prometheus that scrapes this topology."""
