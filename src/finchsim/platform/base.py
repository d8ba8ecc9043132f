"""The one seam between what scenarios/analysis ask for and how a platform does it.

Every scenario action and every observer goes through `Platform`; nothing above this module asks
which platform ran. An implementation provides the abstract methods below; each docstring is the
contract, and `tests/platform/test_contract.py` holds every implementation to it. States use
Kubernetes' own words (Running, Pending, Ready, NotReady, ...), and names are qualified by
namespace wherever Kubernetes qualifies them (pods, workloads, jobs; not nodes).

A platform declares what it can do in `capabilities`; a drill step that needs a capability the
platform lacks is refused when the drill is validated (`missing()`), never halfway through it.

Implementations are chosen by name in `finchsim.platform.registry`."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from finchsim.errors import PlatformError

T = TypeVar("T")


class Capability(StrEnum):
    """What a platform can do beyond listing and scaling its objects."""

    PROCESSES = "processes"  # pods run real processes: their CPU and memory are measured
    KILL_CONTAINER = "kill-container"  # a container's processes can be killed (kubelet restarts)
    NODE_FAILURE = "node-failure"  # a node can stop and come back (fail_node / recover_node)
    DRAIN = "drain"  # cordon + eviction through the PodDisruptionBudgets
    JOBS = "jobs"  # run_job runs the CronJob's job template to completion
    EVENTS = "events"  # events(since) reports the cluster's Events
    INGRESS = "ingress"  # ingress_url reaches the workload through the Ingress rules
    PROMETHEUS = "prometheus"  # prometheus_url scrapes the topology
    SIMULATED_LOAD = "simulated-load"  # usage comes from the load model (offer_load), not processes
    KUBECONFIG = "kubeconfig"  # a real API server: kubectl works against kubeconfig()
    EXEC = "exec"  # exec_command runs a command in a pod's container


@dataclass(frozen=True)
class ContainerState:
    """One container of a pod, as `kubectl describe pod` shows it."""

    name: str
    ready: bool
    restarts: int
    state: str  # Waiting | Running | Terminated
    reason: str = ""  # CrashLoopBackOff, OOMKilled, Completed, ErrImagePull, ...


@dataclass(frozen=True)
class PodState:
    """One pod as `kubectl get pods -o wide` would show it."""

    namespace: str
    name: str
    uid: str
    owner_kind: str  # Deployment | StatefulSet | Job | "" (a bare pod)
    owner: str  # the Deployment/StatefulSet/Job it belongs to
    node: str | None  # None while Pending
    phase: str  # Pending | Running | Succeeded | Failed
    ready: bool
    created: float  # unix time of metadata.creationTimestamp
    labels: Mapping[str, str] = field(default_factory=dict)
    containers: tuple[ContainerState, ...] = ()
    deleting: bool = False  # metadata.deletionTimestamp is set (Terminating)
    reason: str = ""  # why it is not running: the scheduler's message while Pending, ...

    @property
    def restarts(self) -> int:
        return sum(c.restarts for c in self.containers)


@dataclass(frozen=True)
class NodeState:
    name: str
    ready: bool
    schedulable: bool
    cpu_allocatable_m: int
    memory_allocatable_bytes: int
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[str, ...] = ()  # "key=value:Effect", as `kubectl describe node` prints them


@dataclass(frozen=True)
class ComponentState:
    """A Deployment/StatefulSet: desired vs ready replicas."""

    kind: str  # Deployment | StatefulSet
    namespace: str
    name: str
    desired: int
    ready: int
    available: int
    updated: int  # pods running the current template revision (rollout progress)


@dataclass(frozen=True)
class HpaStatus:
    """A HorizontalPodAutoscaler as `kubectl get hpa` shows it."""

    namespace: str
    name: str
    target: str  # the scale target's name
    min_replicas: int
    max_replicas: int
    current: int  # status.currentReplicas
    desired: int  # status.desiredReplicas
    targets: Mapping[str, int]  # resource -> target averageUtilization %
    utilization: Mapping[str, float]  # resource -> last measured averageUtilization %


@dataclass(frozen=True)
class EventRecord:
    """One Kubernetes Event (events.k8s.io/v1), as `kubectl events` lists it."""

    time: float  # unix time it (last) happened
    namespace: str
    object: str  # Kind/name of the object it is about
    type: str  # Normal | Warning
    reason: str  # Scheduled, Killing, SuccessfulRescale, NodeNotReady, TaintManagerEviction, ...
    message: str
    source: str = ""  # the controller that reported it
    count: int = 1


@dataclass(frozen=True)
class JobResult:
    name: str
    succeeded: bool
    duration_seconds: float
    output: str = ""
    reason: str = ""  # Complete, BackoffLimitExceeded, DeadlineExceeded, ...


class Platform(ABC):
    """A place the Finch topology runs: processes here, a KWOK cluster, any kubeconfig context."""

    name: str
    capabilities: frozenset[Capability] = frozenset()

    # -- lifecycle -------------------------------------------------------------------------

    @abstractmethod
    def up(self, timeout: float = 300.0) -> None:
        """Bring the whole topology to ready: every Deployment and StatefulSet at its desired
        ready replicas, monitoring scraping where the platform has it. Raises PlatformError
        naming what was not ready (and leaves nothing behind) if it cannot within `timeout`."""

    @abstractmethod
    def down(self) -> None:
        """Remove everything `up` created: processes, ports, clusters, temp dirs. Idempotent;
        safe to call on a half-started platform and when nothing runs."""

    def poll(self) -> None:  # noqa: B027 (a hook: most platforms need nothing here)
        """Let the platform make progress while a caller waits (one reconcile round where the
        platform reconciles in-process; nothing where real controllers run). Raises
        PlatformError when a part of the platform died."""

    # -- queries ---------------------------------------------------------------------------

    @abstractmethod
    def components(self) -> list[ComponentState]:
        """Every Deployment and StatefulSet of the topology with its desired/ready replicas."""

    @abstractmethod
    def pods(self) -> list[PodState]:
        """Every pod of the topology that exists now, including Pending and Terminating ones."""

    @abstractmethod
    def nodes(self) -> list[NodeState]:
        """Every node with its readiness, schedulability, allocatable resources and taints."""

    @abstractmethod
    def hpas(self) -> list[HpaStatus]:
        """Every HorizontalPodAutoscaler of the topology with its last measurement."""

    @abstractmethod
    def events(self, since: float) -> list[EventRecord]:
        """The Events that happened at or after unix time `since`, oldest first."""

    # -- actions ---------------------------------------------------------------------------

    @abstractmethod
    def scale(self, namespace: str, name: str, replicas: int) -> None:
        """Set a Deployment's or StatefulSet's desired replicas through its scale subresource
        (an HPA may change it again). Raises PlatformError naming the known workloads when
        there is no such workload."""

    @abstractmethod
    def rollout(self, namespace: str, name: str) -> None:
        """Replace every pod of a workload with a new template revision (`kubectl rollout
        restart`), following its strategy (maxSurge/maxUnavailable, Recreate, or a
        StatefulSet's one-at-a-time). Returns at once; `components()` shows the progress."""

    @abstractmethod
    def delete_pod(self, namespace: str, name: str, grace_period: int | None = None) -> None:
        """Delete a pod (`kubectl delete pod`): with its own terminationGracePeriodSeconds when
        `grace_period` is None, or that many seconds (0: at once, like a node OOM). Its
        controller recreates it. Returns once the API accepted the deletion."""

    @abstractmethod
    def kill_container(self, namespace: str, pod: str, container: str) -> None:
        """SIGKILL one container's processes; the pod stays and the kubelet restarts the
        container as its restartPolicy says (restartCount + 1). Needs KILL_CONTAINER."""

    @abstractmethod
    def fail_node(self, node: str) -> None:
        """The node stops abruptly (its kubelet stops heartbeating, its pods' processes die
        where it has any): the node-lifecycle controller marks it NotReady after its grace
        period, taints it, and evicts its pods after their tolerations; Deployment pods are
        recreated elsewhere, StatefulSet pods wait for the node. Needs NODE_FAILURE."""

    @abstractmethod
    def recover_node(self, node: str) -> None:
        """A failed node comes back (heartbeats resume, Ready): pods evicted meanwhile are
        removed for good, the others start again. Needs NODE_FAILURE."""

    @abstractmethod
    def drain_node(self, node: str, timeout: float = 300.0) -> None:
        """`kubectl drain`: cordon the node, then evict each of its pods through the eviction
        API (PodDisruptionBudgets honoured; a refused eviction is retried every 5 s like
        kubectl does); blocks until no evictable pod is left on it. Raises PlatformError naming
        the budget when a PDB forbids progress past `timeout`. Needs DRAIN."""

    @abstractmethod
    def uncordon_node(self, node: str) -> None:
        """Make a cordoned (drained) node schedulable again."""

    @abstractmethod
    def run_job(self, namespace: str, cronjob: str, timeout: float | None = None) -> JobResult:
        """Run a CronJob's job template once now (`kubectl create job --from=cronjob/...`) and
        wait until it completes or fails (default: its activeDeadlineSeconds, else 1 h).
        Needs JOBS."""

    def exec_command(
        self, namespace: str, workload: str, argv: Sequence[str], timeout: float = 300.0
    ) -> str:
        """`kubectl exec deploy/<workload> -- argv`: run `argv` in the first container of a
        ready pod of `workload`, with that container's environment and working directory;
        return its output. Raises CommandError (with the output) when it exits non-zero.
        Needs EXEC."""
        self.require(Capability.EXEC)
        raise PlatformError(f"the {self.name} platform cannot exec")

    def offer_load(self, requests_per_second: Mapping[str, float]) -> None:
        """Set the offered request rate per entry point (an Ingress host) for the load model:
        the platform turns it into each pod's CPU and memory (SIMULATED_LOAD). Platforms that
        run real processes are driven by real traffic instead and refuse."""
        self.require(Capability.SIMULATED_LOAD)

    # -- endpoints -------------------------------------------------------------------------

    @abstractmethod
    def ingress_url(self, host: str) -> str:
        """The URL that reaches the Ingress rule for `host` from this machine (loopback).
        Needs INGRESS."""

    @abstractmethod
    def prometheus_url(self) -> str:
        """The URL of the Prometheus that scrapes this topology. Needs PROMETHEUS."""

    def kubeconfig(self) -> Path:
        """The kubeconfig file of the running cluster, for kubectl. Needs KUBECONFIG."""
        self.require(Capability.KUBECONFIG)
        raise PlatformError(f"the {self.name} platform has no kubeconfig")

    # -- helpers every platform shares -------------------------------------------------------

    def missing(self, needed: frozenset[Capability] | set[Capability]) -> list[Capability]:
        """The capabilities in `needed` this platform lacks (for validating a drill)."""
        return sorted(needed - self.capabilities)

    def require(self, capability: Capability) -> None:
        """Refuse, with one clear message, an action this platform cannot do."""
        if capability not in self.capabilities:
            raise PlatformError(
                f"the {self.name} platform cannot do this: it lacks the {capability.value!r} "
                f"capability (it has: {', '.join(sorted(self.capabilities)) or 'none'})"
            )

    def wait_for(
        self, condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.5
    ) -> T:
        """Poll `condition` (letting the platform make progress in between) until it returns a
        truthy value, and return that value. Raises PlatformError saying `what` was not reached
        within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise PlatformError(f"timed out after {timeout:.0f}s waiting for {what}")
            self.poll()
            time.sleep(interval)
