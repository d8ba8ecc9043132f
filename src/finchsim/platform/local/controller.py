"""The local control plane: one reconcile loop doing what Kubernetes' controllers would.

Each `tick()` (in the thread that owns the processes: PDEATHSIG is per thread) does, in order:
ReplicaSet/StatefulSet controller (create/delete pods to match replicas), scheduler (bind
Pending pods by requests), kubelet (start/restart containers, run due probes), endpoints (ready
pods of each Service → the ingress upstreams), HPA controller (every sync period), node lifecycle
(NotReady nodes' pods evicted after the timeout), and samples usage for the metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from kubernetes.utils.quantity import parse_quantity

from finchsim.platform.base import NodeState
from finchsim.platform.local import hpa as hpa_algo
from finchsim.platform.local.cgroups import CgroupSupport
from finchsim.platform.local.pods import ContainerRun, Pod, check
from finchsim.platform.local.processes import Proc, children_map
from finchsim.platform.local.runtimes import PodEnv
from finchsim.platform.local.scheduling import Placement, PodToPlace, schedule
from finchsim.platform.local.settings import LocalPlatformSettings
from finchsim.platform.local.snapshot import (
    ContainerSnapshot,
    HpaSnapshot,
    NodeSnapshot,
    PodSnapshot,
    Snapshot,
    WorkloadSnapshot,
)
from finchsim.platform.ports import free_port
from finchsim.platform.topology import Topology, Workload

ZONE_LABEL = "topology.kubernetes.io/zone"


@dataclass
class VirtualNode:
    state: NodeState
    failed_at: float | None = None  # monotonic time the node stopped


@dataclass
class HpaRuntime:
    state: hpa_algo.HpaState = field(default_factory=hpa_algo.HpaState)
    last_sync: float = 0.0
    desired: int = 0
    utilization: dict[str, float] = field(default_factory=dict)


class Controller:
    """Owns every pod of one topology; not thread-safe: call from one thread."""

    def __init__(self, topology: Topology, settings: LocalPlatformSettings, run_dir: Path,
                 run_id: str, project_root: Path, cgroups: CgroupSupport | None,
                 log: Callable[[str], None],
                 on_spawn: Callable[[Proc, str], None] | None = None) -> None:
        self.topology = topology
        self.settings = settings
        self.run_dir = run_dir
        self.run_id = run_id
        self.project_root = project_root
        self.cgroups = cgroups
        self.log = log
        self.on_spawn = on_spawn or (lambda _proc, _label: None)
        self.replicas = {name: w.replicas for name, w in topology.workloads.items()}
        self.pods: dict[str, Pod] = {}
        self.pending: dict[str, str] = {}  # pod name -> scheduler message
        self.nodes = self._make_nodes()
        self.hpas = {name: HpaRuntime() for name in topology.hpas}
        self.ordinal_ports: dict[tuple[str, int], dict[int, int]] = {}
        self.services = self._service_ports()
        self.probes = ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe")
        self.inflight: dict[tuple[str, str, str], Future[bool]] = {}
        self.counter = 0
        self.decisions = (run_dir / "hpa-decisions.jsonl").open("a")
        self.cpu_history: dict[tuple[str, str], list[tuple[float, float]]] = {}

    # -- set-up ------------------------------------------------------------------------------

    def _make_nodes(self) -> dict[str, VirtualNode]:
        group = self.settings.nodes
        cpu_m = int(parse_quantity(group.cpu) * 1000)
        memory = int(parse_quantity(group.memory))
        nodes = {}
        for i in range(group.count):
            name = f"worker-{i + 1}"
            labels = {"kubernetes.io/hostname": name,
                      ZONE_LABEL: group.zones[i % len(group.zones)] if group.zones else ""}
            nodes[name] = VirtualNode(NodeState(name, True, True, cpu_m, memory, labels))
        return nodes

    def _service_ports(self) -> dict[str, dict[int, int]]:
        """Stable local ports for Services backed by a StatefulSet's first pod (the data stores):
        clients are configured with them once, like a ClusterIP, and a recreated pod keeps them."""
        services: dict[str, dict[int, int]] = {}
        for svc in self.topology.services.values():
            for w in self.topology.workloads.values():
                if w.kind != "StatefulSet" or not _selects(svc.selector, w.labels):
                    continue
                ports = self._ports_for(w, 0)
                services[svc.name] = {sp: ports.get(w.containers[0].port(tp), 0)
                                      for sp, tp in svc.ports.items()
                                      if _resolvable(w, tp)}
        return services

    def _ports_for(self, w: Workload, ordinal: int | None) -> dict[int, int]:
        wanted = [p for c in w.containers for p in c.ports.values()]
        if ordinal is None:
            return {p: free_port() for p in wanted}
        key = (w.name, ordinal)
        if key not in self.ordinal_ports:
            self.ordinal_ports[key] = {p: free_port() for p in wanted}
        return self.ordinal_ports[key]

    # -- the loop ----------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._node_lifecycle(now)
        self._replicas()
        self._schedule()
        for pod in list(self.pods.values()):
            pod.step(now)
            self._probes(pod, now)
        self._reap()
        self._autoscale(now)

    def _live(self, workload: str) -> list[Pod]:
        return [p for p in self.pods.values() if p.workload.name == workload and not p.deleting]

    def _replicas(self) -> None:
        for name, w in self.topology.workloads.items():
            live = self._live(name)
            want = self.replicas[name]
            if w.kind == "StatefulSet":
                have = {int(p.name.rsplit("-", 1)[1]) for p in live}
                for ordinal in range(want):
                    if ordinal not in have:
                        self._create(w, f"{name}-{ordinal}", ordinal)
                for pod in live:
                    if int(pod.name.rsplit("-", 1)[1]) >= want:
                        self.delete_pod(pod.name)
                continue
            for _ in range(want - len(live)):
                self.counter += 1
                self._create(w, f"{name}-{self.run_id[-5:]}-{self.counter:04d}", None)
            # ReplicaSet deletion order: unscheduled, then not ready, then the newest.
            surplus = sorted(live, key=lambda p: (p.node != "", p.ready, -p.created))
            for pod in surplus[: max(0, len(live) - want)]:
                self.delete_pod(pod.name)

    def _create(self, w: Workload, name: str, ordinal: int | None) -> None:
        pod_dir = self.run_dir / "pods" / name
        mounts = {}
        for c in w.containers + w.init_containers:
            for path, volume in c.mounts.items():
                kind = w.volumes.get(volume, "emptyDir")
                if kind.startswith("pvc:"):
                    claim = kind[4:] if ordinal is None else f"{kind[4:]}-{name}"
                    local = self.run_dir / "volumes" / claim
                else:
                    local = pod_dir / "volumes" / volume
                local.mkdir(parents=True, exist_ok=True, mode=0o755)
                local.chmod(0o777 if not kind.startswith("pvc:") else 0o755)
                mounts[path] = local
        env = PodEnv(name, pod_dir, self._ports_for(w, ordinal), mounts, self.services,
                     self.project_root)
        pod = Pod(name, w, "", env, self.cgroups, self.run_id)
        pod.on_spawn = self.on_spawn
        self.pods[name] = pod
        self.pending[name] = "waiting for the scheduler"

    def _schedule(self) -> None:
        bound = [Placement(PodToPlace.of(p.workload, p.name), p.node)
                 for p in self.pods.values() if p.node and not p.deleting]
        nodes = [n.state for n in self.nodes.values()]
        for name in list(self.pending):
            pod = self.pods[name]
            result = schedule(PodToPlace.of(pod.workload, name), nodes, bound)
            if result.node is None:
                if self.pending[name] != result.message:
                    self.log(f"{name}: FailedScheduling: {result.message}")
                self.pending[name] = result.message
                continue
            pod.node = result.node
            bound.append(Placement(PodToPlace.of(pod.workload, name), result.node))
            del self.pending[name]
            self.log(f"{name}: scheduled to {result.node}")

    def _reap(self) -> None:
        for name, pod in list(self.pods.items()):
            if pod.deleting:
                pod.destroy_cgroups()
                del self.pods[name]
                self.pending.pop(name, None)

    def delete_pod(self, name: str, grace: float = 10.0) -> None:
        pod = self.pods.get(name)
        if pod is None:
            return
        self.log(f"{name}: deleting")
        pod.stop(grace)

    # -- probes ------------------------------------------------------------------------------

    def _probes(self, pod: Pod, now: float) -> None:
        for run in pod.containers:
            self._collect_probe_results(pod, run, now)
            startup_needed = run.spec.startup is not None and not run.startup.passed
            kinds = ["startup"] if startup_needed else ["liveness", "readiness"]
            for kind in kinds:
                probe = getattr(run.spec, kind)
                key = (pod.name, run.spec.name, kind)
                if probe is None or key in self.inflight or not pod.probe_due(run, kind, probe,
                                                                              now):
                    continue
                getattr(run, kind).last_run = now
                target = pod.probe_target(run, probe)
                self.inflight[key] = self.probes.submit(check, *target, probe.timeout)
        ready = bool(pod.containers) and pod.phase == "Running" and all(
            r.running and (r.spec.readiness is None or r.readiness.passed)
            and (r.spec.startup is None or r.startup.passed) for r in pod.containers)
        if ready != pod.ready:
            pod.ready = ready
            pod.ready_transition = time.time()
            self.log(f"{pod.name}: {'Ready' if ready else 'NotReady'}")

    def _collect_probe_results(self, pod: Pod, run: ContainerRun, now: float) -> None:
        for kind in ("startup", "liveness", "readiness"):
            key = (pod.name, run.spec.name, kind)
            future = self.inflight.get(key)
            if future is None or not future.done():
                continue
            del self.inflight[key]
            ok = future.result()
            probe = getattr(run.spec, kind)
            state = getattr(run, kind)
            if ok:
                state.successes, state.failures = state.successes + 1, 0
                if state.successes >= probe.success_threshold:
                    state.passed = True
            else:
                state.failures, state.successes = state.failures + 1, 0
                if state.failures >= probe.failure_threshold:
                    if kind == "readiness":
                        state.passed = False
                    else:
                        self.log(f"{pod.name}/{run.spec.name}: {kind} probe failed "
                                 f"{state.failures}x, restarting")
                        pod.restart_container(run, now)
                        return

    # -- autoscaling -------------------------------------------------------------------------

    def _autoscale(self, now: float) -> None:
        period = self.settings.timings.hpaSyncPeriod
        for name, spec in self.topology.hpas.items():
            rt = self.hpas[name]
            if now - rt.last_sync < period or spec.target not in self.replicas:
                continue
            rt.last_sync = now
            settings = hpa_algo.ControllerSettings(
                downscale_stabilization=self.settings.timings.hpaDownscaleStabilization,
                cpu_initialization_period=self.settings.timings.hpaCpuInitializationPeriod,
                initial_readiness_delay=self.settings.timings.hpaInitialReadinessDelay)
            wall = time.time()
            samples = [self._pod_sample(p, wall) for p in self.pods.values()
                       if p.workload.name == spec.target]
            current = self.replicas[spec.target]
            decision = hpa_algo.sync(spec, rt.state, current, samples, wall, settings)
            rt.state = decision.state
            rt.desired = decision.final_replicas
            rt.utilization = {m.resource: float(m.utilization) for m in decision.metrics
                              if m.utilization is not None}
            self.decisions.write(json.dumps({"time": wall, "hpa": name, "current": current,
                                             "desired": decision.final_replicas,
                                             "reason": decision.reason,
                                             "decision": decision.record()}, default=str) + "\n")
            self.decisions.flush()
            if decision.rescale:
                self.log(f"{name}: {decision.reason}")
                self.replicas[spec.target] = decision.final_replicas

    def _pod_sample(self, pod: Pod, wall: float) -> hpa_algo.PodSample:
        window = self.settings.timings.metricsResolution
        usage: dict[str, int] = {}
        cpu_rates = []
        memory = 0
        for run in pod.containers:
            history = self.cpu_history.get((pod.name, run.spec.name), [])
            recent = [h for h in history if h[0] >= wall - window]
            if len(recent) >= 2 and recent[-1][0] > recent[0][0]:
                cpu_rates.append((recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0]))
            if run.last_usage is not None:
                memory += run.last_usage.working_set_bytes
        if cpu_rates and len(cpu_rates) == len(pod.containers):
            usage["cpu"] = int(sum(cpu_rates) * 1000)
        if memory:
            usage["memory"] = memory
        requests = {"cpu": sum(r.spec.resources.cpu_request_m for r in pod.containers),
                    "memory": sum(r.spec.resources.memory_request for r in pod.containers)}
        return hpa_algo.PodSample(
            name=pod.name, ready=pod.ready, start_time=pod.created,
            ready_transition=pod.ready_transition, usage=usage,
            requests={k: v for k, v in requests.items() if v},
            phase="Pending" if not pod.node else "Running", deleting=pod.deleting,
            sample_time=wall, sample_window=window)

    # -- nodes -------------------------------------------------------------------------------

    def fail_node(self, name: str, now: float) -> None:
        node = self.nodes[name]
        node.failed_at = now
        for pod in list(self.pods.values()):
            if pod.node == name and not pod.deleting:
                for run in pod.containers + pod.inits:
                    proc = run.process
                    if proc is not None:
                        proc.kill()
                pod.ready = False
        self.log(f"{name}: stopped (its processes were killed)")

    def _node_lifecycle(self, now: float) -> None:
        timings = self.settings.timings
        for node in self.nodes.values():
            if node.failed_at is None:
                continue
            down_for = now - node.failed_at
            if node.state.ready and down_for >= timings.nodeMonitorGracePeriod:
                node.state = replace(node.state, ready=False)
                self.log(f"{node.state.name}: NotReady")
            if not node.state.ready and down_for >= (timings.nodeMonitorGracePeriod
                                                     + timings.podEvictionTimeout):
                for pod in list(self.pods.values()):
                    if pod.node == node.state.name and not pod.deleting:
                        self.log(f"{pod.name}: evicted from NotReady node {node.state.name}")
                        pod.kill()

    def node_is_down(self, name: str) -> bool:
        return self.nodes[name].failed_at is not None

    # -- observation -------------------------------------------------------------------------

    def sample(self) -> None:
        """Refresh every container's CPU/memory usage (one /proc pass for all of them)."""
        kids = children_map()
        wall = time.time()
        for pod in self.pods.values():
            if pod.node and self.node_is_down(pod.node):
                continue
            for run in pod.containers:
                proc = run.process
                if proc is None or not run.running:
                    continue
                if run.cgroup is not None:
                    stats = run.cgroup.stats()
                    cpu, ws = stats.cpu_usage_seconds, stats.working_set_bytes
                    usage = proc.sample(kids)
                    run.last_usage = replace(usage, cpu_seconds=cpu, working_set_bytes=ws)
                else:
                    run.last_usage = proc.sample(kids)
                hist = self.cpu_history.setdefault((pod.name, run.spec.name), [])
                hist.append((wall, run.last_usage.cpu_seconds))
                del hist[:-120]

    def snapshot(self) -> Snapshot:
        wall = time.time()
        pods = []
        ns = self.topology.namespace
        for pod in self.pods.values():
            down = bool(pod.node) and self.node_is_down(pod.node)
            containers = []
            for run in pod.containers:
                res = run.spec.resources
                usage = run.last_usage
                stats = run.cgroup.stats() if run.cgroup is not None and run.running else None
                containers.append(ContainerSnapshot(
                    name=run.spec.name, cpu_seconds=usage.cpu_seconds if usage else 0.0,
                    memory_working_set=usage.working_set_bytes if usage else 0,
                    restarts=run.restarts, cpu_request_m=res.cpu_request_m,
                    cpu_limit_m=res.cpu_limit_m, memory_request=res.memory_request,
                    memory_limit=res.memory_limit,
                    throttled_periods=stats.nr_throttled if stats else 0,
                    periods=stats.nr_periods if stats else 0,
                    throttled_seconds=stats.throttled_seconds if stats else 0.0,
                    oom_events=(stats.oom_kills or 0) if stats else 0,
                    running=run.running and not down))
            phase = "Pending" if not pod.node else ("Unknown" if down else pod.phase)
            if pod.phase == "Running" and not all(r.completed for r in pod.inits):
                phase = "Pending"
            kind = "StatefulSet" if pod.workload.kind == "StatefulSet" else "ReplicaSet"
            pods.append(PodSnapshot(ns, pod.name, kind, pod.workload.name, pod.node or None,
                                    phase, pod.ready and not down, pod.created,
                                    tuple(containers), self.pending.get(pod.name, "")))
        workloads = []
        for name, w in self.topology.workloads.items():
            live = self._live(name)
            ready = sum(1 for p in live if p.ready)
            workloads.append(WorkloadSnapshot(w.kind, ns, name, self.replicas[name], len(live),
                                              ready, ready, len(live)))
        hpas = [HpaSnapshot(ns, name, spec.target, spec.min_replicas, spec.max_replicas,
                            self.replicas.get(spec.target, 0),
                            self.hpas[name].desired or self.replicas.get(spec.target, 0),
                            {m.resource: m.utilization for m in spec.metrics},
                            self.hpas[name].utilization)
                for name, spec in self.topology.hpas.items()]
        nodes = [NodeSnapshot(n.state.name, n.state.ready, n.state.schedulable,
                              n.state.cpu_allocatable_m, n.state.memory_allocatable_bytes,
                              n.state.labels) for n in self.nodes.values()]
        return Snapshot(wall, tuple(pods), tuple(nodes), tuple(workloads), tuple(hpas))

    def endpoints(self, service: str) -> list[str]:
        """`127.0.0.1:port` of every ready pod behind a Service (its EndpointSlice)."""
        svc = self.topology.services[service]
        out = []
        for pod in self.pods.values():
            if not pod.ready or not _selects(svc.selector, pod.workload.labels):
                continue
            for target in svc.ports.values():
                for c in pod.workload.containers:
                    try:
                        port = c.port(target)
                    except (KeyError, ValueError):
                        continue
                    if port in pod.env.ports:
                        out.append(f"127.0.0.1:{pod.env.ports[port]}")
                        break
                break
        return sorted(out)

    def shutdown(self, grace: float = 10.0) -> None:
        """Delete every pod at once, as a namespace deletion does: all get SIGTERM together, so
        the whole teardown takes one grace period, not one per pod."""
        pods = list(self.pods.values())
        with ThreadPoolExecutor(max_workers=max(1, len(pods))) as pool:
            list(pool.map(lambda pod: pod.stop(grace), pods))
        for pod in pods:
            pod.destroy_cgroups()
        self.pods.clear()
        self.probes.shutdown(wait=False, cancel_futures=True)
        self.decisions.close()


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _resolvable(w: Workload, target: int | str) -> bool:
    try:
        w.containers[0].port(target)
    except (KeyError, ValueError):
        return False
    return True
