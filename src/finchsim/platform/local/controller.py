"""The local control plane: one reconcile loop doing what Kubernetes' controllers would.

Each `tick()` (in the thread that owns the processes: PDEATHSIG is per thread) does, in order:
node lifecycle (NotReady after the grace period, pods evicted after the toleration), the
Deployment/StatefulSet controllers (replicas and rollouts, `rollout`), the Job and CronJob
controllers (`jobs`), the scheduler, the kubelet (start/restart containers, probes, but none
on a dead node), and the HPA controller (`autoscaler`). `sample()` refreshes usage;
`endpoints()` gives each Service's ready pods (the ingress upstreams)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from kubernetes.utils.quantity import parse_quantity

from finchsim.errors import PlatformError
from finchsim.platform.base import NodeState
from finchsim.platform.local.autoscaler import Autoscaler
from finchsim.platform.local.cgroups import CgroupSupport
from finchsim.platform.local.disruption import Budget, budget, selects
from finchsim.platform.local.jobs import CronState, JobRun, next_fire
from finchsim.platform.local.pods import Pod
from finchsim.platform.local.probing import Prober
from finchsim.platform.local.processes import Proc
from finchsim.platform.local.rollout import PodView, plan_deployment, plan_statefulset
from finchsim.platform.local.runtimes import PodEnv
from finchsim.platform.local.scheduling import Placement, PodToPlace, schedule
from finchsim.platform.local.settings import LocalPlatformSettings
from finchsim.platform.local.usage import UsageSampler
from finchsim.platform.ports import free_port
from finchsim.platform.topology import Topology, Workload

ZONE_LABEL = "topology.kubernetes.io/zone"


@dataclass
class VirtualNode:
    state: NodeState
    failed_at: float | None = None  # monotonic time the node stopped


class Controller:
    """Owns every pod of one topology; not thread-safe: call from one thread."""

    def __init__(
        self,
        topology: Topology,
        settings: LocalPlatformSettings,
        run_dir: Path,
        run_id: str,
        project_root: Path,
        cgroups: CgroupSupport | None,
        log: Callable[[str], None],
        on_spawn: Callable[[Proc, str], None] | None = None,
    ) -> None:
        self.topology = topology
        self.settings = settings
        self.run_dir = run_dir
        self.run_id = run_id
        self.project_root = project_root
        self.cgroups = cgroups
        self.log = log
        self.on_spawn = on_spawn or (lambda _proc, _label: None)
        self.replicas = {name: w.replicas for name, w in topology.workloads.items()}
        self.revisions = dict.fromkeys(topology.workloads, 1)
        self.pods: dict[str, Pod] = {}
        self.pending: dict[str, str] = {}  # pod name -> scheduler message
        self.nodes = self._make_nodes()
        self.ordinal_ports: dict[tuple[str, int], dict[int, int]] = {}
        self.services = self._service_ports()
        self.prober = Prober(log)
        self.usage = UsageSampler()
        self.autoscaler = Autoscaler(topology.hpas, settings.timings, self.usage, run_dir, log)
        self.jobs: dict[str, JobRun] = {}
        self.crons = {name: CronState(cj) for name, cj in topology.cronjobs.items()}
        self.counter = 0

    # -- set-up ------------------------------------------------------------------------------

    def _make_nodes(self) -> dict[str, VirtualNode]:
        group = self.settings.nodes
        cpu_m = int(parse_quantity(group.cpu) * 1000)
        memory = int(parse_quantity(group.memory))
        nodes = {}
        for i in range(group.count):
            name = f"worker-{i + 1}"
            labels = {
                "kubernetes.io/hostname": name,
                ZONE_LABEL: group.zones[i % len(group.zones)] if group.zones else "",
            }
            nodes[name] = VirtualNode(NodeState(name, True, True, cpu_m, memory, labels))
        return nodes

    def _service_ports(self) -> dict[str, dict[int, int]]:
        """Stable local ports for Services backed by a StatefulSet's first pod (the data stores):
        clients are configured with them once, like a ClusterIP, and a recreated pod keeps them."""
        services: dict[str, dict[int, int]] = {}
        for svc in self.topology.services.values():
            for w in self.topology.workloads.values():
                if w.kind != "StatefulSet" or not selects(svc.selector, w.labels):
                    continue
                ports = self._ports_for(w, 0)
                services[svc.name] = {
                    sp: ports.get(w.containers[0].port(tp), 0)
                    for sp, tp in svc.ports.items()
                    if _resolvable(w, tp)
                }
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
        self._workloads()
        self._jobs(now)
        self._schedule()
        for pod in list(self.pods.values()):
            if pod.node and self.node_is_down(pod.node):
                continue  # its kubelet is gone: nothing starts, restarts or probes there
            pod.step(now)
            self.prober.run(pod, now)
        self._reap()
        self.autoscaler.sync(now, self.pods.values(), self.replicas)

    def live_pods(self, workload: str) -> list[Pod]:
        return [
            p
            for p in self.pods.values()
            if p.workload.name == workload and not p.deleting and p.workload.kind != "Job"
        ]

    def _workloads(self) -> None:
        for name, w in self.topology.workloads.items():
            live = self.live_pods(name)
            views = [PodView(p.name, p.revision, p.ready, bool(p.node), p.created) for p in live]
            if w.kind == "StatefulSet":
                ordinals = {
                    int(p.name.rsplit("-", 1)[1])
                    for p in self.pods.values()
                    if p.workload.name == name
                }
                plan = plan_statefulset(views, self.replicas[name], self.revisions[name], ordinals)
                if plan.ordinal is not None:
                    self.create_pod(w, f"{name}-{plan.ordinal}", plan.ordinal)
            else:
                plan = plan_deployment(
                    views,
                    self.replicas[name],
                    self.revisions[name],
                    w.max_surge,
                    w.max_unavailable,
                    w.recreate,
                )
                for _ in range(plan.create):
                    self.counter += 1
                    self.create_pod(w, f"{name}-{self.run_id[-5:]}-{self.counter:04d}", None)
            for victim in plan.delete:
                self.delete_pod(victim)

    def rollout(self, workload: str) -> None:
        """`kubectl rollout restart`: a new template revision; the controllers replace every
        pod according to the workload's strategy."""
        self.revisions[workload] += 1
        self.log(f"{workload}: rolling out revision {self.revisions[workload]}")

    def updated(self, workload: str) -> int:
        return sum(1 for p in self.live_pods(workload) if p.revision == self.revisions[workload])

    def create_pod(self, w: Workload, name: str, ordinal: int | None) -> Pod:
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
        env = PodEnv(
            name, pod_dir, self._ports_for(w, ordinal), mounts, self.services, self.project_root
        )
        pod = Pod(name, w, "", env, self.cgroups, self.run_id)
        pod.revision = self.revisions.get(w.name, 1)
        pod.on_spawn = self.on_spawn
        self.pods[name] = pod
        self.pending[name] = "waiting for the scheduler"
        return pod

    def _schedule(self) -> None:
        bound = [
            Placement(PodToPlace.of(p.workload, p.name), p.node)
            for p in self.pods.values()
            if p.node and not p.deleting and p.phase not in ("Succeeded", "Failed")
        ]
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
            # A pod on a dead node stays Terminating: no kubelet confirms its end.
            if pod.deleting and not (pod.node and self.node_is_down(pod.node)):
                pod.destroy_cgroups()
                del self.pods[name]
                self.pending.pop(name, None)
                self.usage.forget(name)

    def delete_pod(self, name: str, grace: float = 10.0) -> None:
        pod = self.pods.get(name)
        if pod is None:
            return
        self.log(f"{name}: deleting")
        pod.stop(grace)

    # -- jobs --------------------------------------------------------------------------------

    def start_job(self, cronjob: str, now: float, reason: str = "manual") -> JobRun:
        """`kubectl create job --from=cronjob/<name>`: a Job from the template, started now."""
        cj = self.topology.cronjobs[cronjob]
        job = JobRun(cj, f"{cronjob}-{reason}-{secrets.token_hex(3)}", now)
        self.jobs[job.name] = job
        self.crons[cronjob].last_schedule = time.time()
        self.log(f"{job.name}: job created")
        self._job_pod(job)
        return job

    def _job_pod(self, job: JobRun) -> None:
        name = f"{job.name}-{secrets.token_hex(3)[:5]}"
        self.create_pod(replace(job.cronjob.job, name=job.name), name, None)
        job.pods.append(name)

    def _jobs(self, now: float) -> None:
        wall = time.time()
        for state in self.crons.values():
            if wall < state.next_run:
                continue
            state.next_run = next_fire(state.cronjob, wall)
            active = [
                j for j in self.jobs.values() if j.active and j.cronjob.name == state.cronjob.name
            ]
            if active and state.cronjob.concurrency_policy == "Forbid":
                self.log(f"{state.cronjob.name}: skipped a run, the last is still active")
                continue
            for job in active if state.cronjob.concurrency_policy == "Replace" else []:
                self._finish(job, now, False, "replaced by the next scheduled run")
            self.start_job(state.cronjob.name, now, reason="scheduled")
        for job in self.jobs.values():
            if job.active:
                self._job_step(job, now)

    def _job_step(self, job: JobRun, now: float) -> None:
        pod = self.pods.get(job.pods[-1])
        deadline = job.cronjob.active_deadline
        if deadline is not None and now - job.started > deadline:
            self._finish(job, now, False, f"DeadlineExceeded after {deadline:.0f}s")
        elif pod is None or pod.phase == "Failed":
            job.failures += 1
            if job.failures > job.cronjob.backoff_limit:
                self._finish(job, now, False, f"BackoffLimitExceeded ({job.failures} failed)")
            else:
                self._collect_output(job)
                self.delete_pod(job.pods[-1], grace=0)
                self._job_pod(job)
        elif pod.phase == "Succeeded":
            self._finish(job, now, True, "Complete")

    def _finish(self, job: JobRun, now: float, succeeded: bool, reason: str) -> None:
        job.finished, job.succeeded, job.reason = now, succeeded, reason
        self._collect_output(job)
        self.delete_pod(job.pods[-1], grace=0)
        if succeeded:
            self.crons[job.cronjob.name].last_success = time.time()
        self.log(f"{job.name}: {reason}")

    def _collect_output(self, job: JobRun) -> None:
        pod_dir = self.run_dir / "pods" / job.pods[-1]
        for container in job.cronjob.job.containers:
            log = pod_dir / f"{container.name}.log"
            if log.exists():
                job.output += log.read_text(errors="replace")

    # -- nodes -------------------------------------------------------------------------------

    def node(self, name: str) -> VirtualNode:
        if name not in self.nodes:
            raise PlatformError(f"no node {name!r}; have: " + ", ".join(self.nodes))
        return self.nodes[name]

    def fail_node(self, name: str, now: float) -> None:
        """The machine stops: every process on it dies at once. The control plane notices only
        after the node monitor grace period (see `_node_lifecycle`)."""
        self.node(name).failed_at = now
        for pod in list(self.pods.values()):
            if pod.node == name:
                for run in pod.containers + pod.inits:
                    proc = run.process
                    if proc is not None:
                        proc.kill()
        self.log(f"{name}: stopped (its processes were killed)")

    def recover_node(self, name: str) -> None:
        """The machine is back: its kubelet reports Ready; pods evicted meanwhile are removed
        for good, the others restart their containers (with back-off, as after a reboot)."""
        node = self.node(name)
        node.failed_at = None
        node.state = replace(node.state, ready=True)
        self.log(f"{name}: Ready")

    def set_schedulable(self, name: str, schedulable: bool) -> None:
        node = self.node(name)
        node.state = replace(node.state, schedulable=schedulable)
        self.log(f"{name}: {'uncordoned' if schedulable else 'cordoned'}")

    def _node_lifecycle(self, now: float) -> None:
        timings = self.settings.timings
        for node in self.nodes.values():
            if node.failed_at is None:
                continue
            down_for = now - node.failed_at
            on_node = [p for p in self.pods.values() if p.node == node.state.name]
            if node.state.ready and down_for >= timings.nodeMonitorGracePeriod:
                node.state = replace(node.state, ready=False)
                self.log(f"{node.state.name}: NotReady")
                for pod in on_node:  # MarkPodsNotReady: they leave every Service at once
                    pod.ready = False
            if not node.state.ready and down_for >= (
                timings.nodeMonitorGracePeriod + timings.podEvictionTimeout
            ):
                for pod in on_node:
                    if not pod.deleting:
                        self.log(f"{pod.name}: evicted from NotReady node {node.state.name}")
                        pod.kill()

    def node_is_down(self, name: str) -> bool:
        return self.nodes[name].failed_at is not None

    # -- disruptions -------------------------------------------------------------------------

    def eviction_blocked_by(self, name: str) -> Budget | None:
        """The eviction API's check: the budget that forbids evicting this pod now, if any."""
        pod = self.pods[name]
        live = [p for p in self.pods.values() if not p.deleting and p.workload.kind != "Job"]
        pods = [(p.workload.labels, p.ready) for p in live]
        for pdb in self.topology.pdbs.values():
            if not selects(pdb.selector, pod.workload.labels):
                continue
            owners = {p.workload.name for p in live if selects(pdb.selector, p.workload.labels)}
            found = budget(pdb, pods, sum(self.replicas.get(o, 0) for o in owners))
            if found.allowed < 1:
                return found
        return None

    # -- observation -------------------------------------------------------------------------

    def sample(self) -> None:
        self.usage.sample(self.pods.values(), self.node_is_down)

    def endpoints(self, service: str) -> list[str]:
        """`127.0.0.1:port` of every ready pod behind a Service (its EndpointSlice)."""
        svc = self.topology.services[service]
        out = []
        for pod in self.pods.values():
            if not pod.ready or not selects(svc.selector, pod.workload.labels):
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
        self.prober.shutdown()
        self.autoscaler.close()


def _resolvable(w: Workload, target: int | str) -> bool:
    try:
        w.containers[0].port(target)
    except (KeyError, ValueError):
        return False
    return True
