"""The controller's state as one `Snapshot`, in Kubernetes' terms (what kubectl and
kube-state-metrics would show): pods with their containers' usage, nodes, workloads, HPAs and
CronJobs."""

from __future__ import annotations

import time

from finchsim.platform.local.controller import Controller
from finchsim.platform.local.pods import Pod
from finchsim.platform.local.snapshot import (
    ContainerSnapshot,
    CronJobSnapshot,
    HpaSnapshot,
    PodSnapshot,
    Snapshot,
    WorkloadSnapshot,
)

OWNER_KINDS = {"StatefulSet": "StatefulSet", "Job": "Job"}  # else a Deployment's ReplicaSet


def snapshot(ctl: Controller) -> Snapshot:
    ns = ctl.topology.namespace
    pods = tuple(_pod(ctl, pod, ns) for pod in ctl.pods.values())
    workloads = []
    for name, w in ctl.topology.workloads.items():
        live = ctl.live_pods(name)
        ready = sum(1 for p in live if p.ready)
        workloads.append(
            WorkloadSnapshot(
                w.kind, ns, name, ctl.replicas[name], len(live), ready, ready, ctl.updated(name)
            )
        )
    hpas = []
    for name, spec in ctl.topology.hpas.items():
        rt = ctl.autoscaler.runtimes[name]
        current = ctl.replicas.get(spec.target, 0)
        hpas.append(
            HpaSnapshot(
                ns,
                name,
                spec.target,
                spec.min_replicas,
                spec.max_replicas,
                current,
                rt.desired or current,
                {m.resource: m.utilization for m in spec.metrics},
                rt.utilization,
            )
        )
    crons = tuple(
        CronJobSnapshot(ns, name, c.created, c.last_schedule, c.last_success)
        for name, c in ctl.crons.items()
    )
    return Snapshot(
        time.time(),
        pods,
        tuple(n.state for n in ctl.nodes.values()),
        tuple(workloads),
        tuple(hpas),
        crons,
    )


def _pod(ctl: Controller, pod: Pod, ns: str) -> PodSnapshot:
    down = bool(pod.node) and ctl.node_is_down(pod.node)
    containers = []
    for run in pod.containers:
        res = run.spec.resources
        usage = run.last_usage
        stats = run.cgroup.stats() if run.cgroup is not None and run.running else None
        containers.append(
            ContainerSnapshot(
                name=run.spec.name,
                cpu_seconds=usage.cpu_seconds if usage else 0.0,
                memory_working_set=usage.working_set_bytes if usage else 0,
                restarts=run.restarts,
                cpu_request_m=res.cpu_request_m,
                cpu_limit_m=res.cpu_limit_m,
                memory_request=res.memory_request,
                memory_limit=res.memory_limit,
                throttled_periods=stats.nr_throttled if stats else 0,
                periods=stats.nr_periods if stats else 0,
                throttled_seconds=stats.throttled_seconds if stats else 0.0,
                oom_events=(stats.oom_kills or 0) if stats else 0,
                running=run.running and not down,
            )
        )
    # Once the node is NotReady its pods' status is Unknown (the kubelet stopped reporting).
    unknown = down and not ctl.nodes[pod.node or ""].state.ready
    phase = "Pending" if not pod.node else ("Unknown" if unknown else pod.phase)
    if pod.phase == "Running" and not all(r.completed for r in pod.inits):
        phase = "Pending"
    reason = ctl.pending.get(pod.name, "")
    if pod.deleting and down:
        reason = "Terminating: its node is unreachable"
    return PodSnapshot(
        ns,
        pod.name,
        OWNER_KINDS.get(pod.workload.kind, "ReplicaSet"),
        pod.workload.name,
        pod.node or None,
        phase,
        pod.ready,
        pod.created,
        tuple(containers),
        reason,
    )
