"""The local platform's metrics, in the vocabulary of cAdvisor and kube-state-metrics v2.

Same metric names, same label names (`namespace`, `pod`, `container`, `node`, `resource`,
`unit`, ...), same units, so every PromQL query in `analysis/` and every alert rule in
`cluster/monitoring/` runs unchanged here and on a real cluster. `families()` is a pure
function of a Snapshot; `serve()` exposes it on 127.0.0.1 for Prometheus to scrape."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    UnknownMetricFamily,
)
from prometheus_client.exposition import make_wsgi_app
from prometheus_client.registry import Collector, CollectorRegistry

from finchsim.platform.local.snapshot import Snapshot

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


def families(snap: Snapshot) -> list[Metric]:
    """Every cAdvisor and kube-state-metrics series the snapshot implies."""
    return [
        *_cadvisor(snap),
        *_pods(snap),
        *_workloads(snap),
        *_nodes(snap),
        *_hpas(snap),
        *_cronjobs(snap),
        *_ingress(snap),
    ]


def _cadvisor(snap: Snapshot) -> Iterator[Metric]:
    labels = ["namespace", "pod", "container"]
    cpu = CounterMetricFamily(
        "container_cpu_usage_seconds_total",
        "Cumulative cpu time consumed in seconds.",
        labels=labels,
    )
    mem = GaugeMetricFamily(
        "container_memory_working_set_bytes", "Current working set in bytes.", labels=labels
    )
    periods = CounterMetricFamily(
        "container_cpu_cfs_periods_total",
        "Number of elapsed enforcement period intervals.",
        labels=labels,
    )
    throttled = CounterMetricFamily(
        "container_cpu_cfs_throttled_periods_total",
        "Number of throttled period intervals.",
        labels=labels,
    )
    throttled_s = CounterMetricFamily(
        "container_cpu_cfs_throttled_seconds_total",
        "Total time duration the container has been throttled.",
        labels=labels,
    )
    quota = GaugeMetricFamily(
        "container_spec_cpu_quota", "CPU quota of the container.", labels=labels
    )
    mem_limit = GaugeMetricFamily(
        "container_spec_memory_limit_bytes", "Memory limit for the container.", labels=labels
    )
    ooms = CounterMetricFamily(
        "container_oom_events_total",
        "Count of out of memory events observed for the container.",
        labels=labels,
    )
    for pod in snap.pods:
        for c in pod.containers:
            if not c.running:
                continue
            key = [pod.namespace, pod.name, c.name]
            cpu.add_metric(key, c.cpu_seconds)
            mem.add_metric(key, c.memory_working_set)
            periods.add_metric(key, c.periods)
            throttled.add_metric(key, c.throttled_periods)
            throttled_s.add_metric(key, c.throttled_seconds)
            ooms.add_metric(key, c.oom_events)
            if c.cpu_limit_m:
                quota.add_metric(key, c.cpu_limit_m * 100)  # microseconds per 100 ms period
            if c.memory_limit:
                mem_limit.add_metric(key, c.memory_limit)
    yield from (cpu, mem, periods, throttled, throttled_s, quota, mem_limit, ooms)


def _pods(snap: Snapshot) -> Iterator[Metric]:
    info = GaugeMetricFamily(
        "kube_pod_info",
        "Information about pod.",
        labels=["namespace", "pod", "node", "created_by_kind", "created_by_name"],
    )
    owner = GaugeMetricFamily(
        "kube_pod_owner",
        "Information about the Pod's owner.",
        labels=["namespace", "pod", "owner_kind", "owner_name"],
    )
    phase = GaugeMetricFamily(
        "kube_pod_status_phase", "The pods current phase.", labels=["namespace", "pod", "phase"]
    )
    ready = GaugeMetricFamily(
        "kube_pod_status_ready",
        "Describes whether the pod is ready.",
        labels=["namespace", "pod", "condition"],
    )
    created = GaugeMetricFamily(
        "kube_pod_created", "Unix creation timestamp.", labels=["namespace", "pod"]
    )
    restarts = CounterMetricFamily(
        "kube_pod_container_status_restarts_total",
        "The number of container restarts per container.",
        labels=["namespace", "pod", "container"],
    )
    running = GaugeMetricFamily(
        "kube_pod_container_status_running",
        "Describes whether the container is currently running.",
        labels=["namespace", "pod", "container"],
    )
    requests = GaugeMetricFamily(
        "kube_pod_container_resource_requests",
        "The number of requested resource by a container.",
        labels=["namespace", "pod", "container", "node", "resource", "unit"],
    )
    limits = GaugeMetricFamily(
        "kube_pod_container_resource_limits",
        "The number of requested limit resource by a container.",
        labels=["namespace", "pod", "container", "node", "resource", "unit"],
    )
    for pod in snap.pods:
        node = pod.node or ""
        info.add_metric([pod.namespace, pod.name, node, pod.owner_kind, pod.owner], 1)
        owner.add_metric([pod.namespace, pod.name, pod.owner_kind, pod.owner], 1)
        for name in PHASES:
            phase.add_metric([pod.namespace, pod.name, name], float(pod.phase == name))
        for cond in ("true", "false"):
            ready.add_metric([pod.namespace, pod.name, cond], float(pod.ready == (cond == "true")))
        created.add_metric([pod.namespace, pod.name], pod.created)
        for c in pod.containers:
            key = [pod.namespace, pod.name, c.name]
            restarts.add_metric(key, c.restarts)
            running.add_metric(key, float(c.running))
            for family, cpu_m, mem in (
                (requests, c.cpu_request_m, c.memory_request),
                (limits, c.cpu_limit_m, c.memory_limit),
            ):
                if cpu_m:
                    family.add_metric([*key, node, "cpu", "core"], cpu_m / 1000)
                if mem:
                    family.add_metric([*key, node, "memory", "byte"], mem)
    yield from (info, owner, phase, ready, created, restarts, running, requests, limits)


def _workloads(snap: Snapshot) -> Iterator[Metric]:
    names = {
        "Deployment": (
            "kube_deployment_spec_replicas",
            "kube_deployment_status_replicas",
            "kube_deployment_status_replicas_ready",
            "kube_deployment_status_replicas_available",
            "kube_deployment_status_replicas_updated",
        ),
        "StatefulSet": (
            "kube_statefulset_replicas",
            "kube_statefulset_status_replicas",
            "kube_statefulset_status_replicas_ready",
            "kube_statefulset_status_replicas_available",
            "kube_statefulset_status_replicas_updated",
        ),
    }
    for kind, metric_names in names.items():
        label = kind.lower()
        fams = [
            GaugeMetricFamily(n, f"{kind} replicas ({n}).", labels=["namespace", label])
            for n in metric_names
        ]
        for w in snap.workloads:
            if w.kind == kind:
                values = (w.desired, w.current, w.ready, w.available, w.updated)
                for fam, value in zip(fams, values, strict=True):
                    fam.add_metric([w.namespace, w.name], value)
        yield from fams


def _nodes(snap: Snapshot) -> Iterator[Metric]:
    cond = GaugeMetricFamily(
        "kube_node_status_condition",
        "The condition of a cluster node.",
        labels=["node", "condition", "status"],
    )
    alloc = GaugeMetricFamily(
        "kube_node_status_allocatable",
        "The allocatable for different resources of a node.",
        labels=["node", "resource", "unit"],
    )
    unsched = GaugeMetricFamily(
        "kube_node_spec_unschedulable", "Whether a node can schedule new pods.", labels=["node"]
    )
    for n in snap.nodes:
        for status in ("true", "false", "unknown"):
            cond.add_metric(
                [n.name, "Ready", status],
                float(n.ready == (status == "true") and status != "unknown"),
            )
        alloc.add_metric([n.name, "cpu", "core"], n.cpu_allocatable_m / 1000)
        alloc.add_metric([n.name, "memory", "byte"], n.memory_allocatable_bytes)
        unsched.add_metric([n.name], float(not n.schedulable))
    yield from (cond, alloc, unsched)


def _hpas(snap: Snapshot) -> Iterator[Metric]:
    labels = ["namespace", "horizontalpodautoscaler"]
    fams = {
        key: GaugeMetricFamily(f"kube_horizontalpodautoscaler_{key}", f"HPA {key}.", labels=labels)
        for key in (
            "spec_min_replicas",
            "spec_max_replicas",
            "status_current_replicas",
            "status_desired_replicas",
        )
    }
    target = GaugeMetricFamily(
        "kube_horizontalpodautoscaler_spec_target_metric",
        "The metric specifications used by this autoscaler.",
        labels=[*labels, "metric_name", "metric_target_type"],
    )
    for h in snap.hpas:
        key = [h.namespace, h.name]
        for name, value in (
            ("spec_min_replicas", h.min_replicas),
            ("spec_max_replicas", h.max_replicas),
            ("status_current_replicas", h.current),
            ("status_desired_replicas", h.desired),
        ):
            fams[name].add_metric(key, value)
        for resource, percent in h.targets.items():
            target.add_metric([*key, resource, "utilization"], percent)
    yield from (*fams.values(), target)


def _cronjobs(snap: Snapshot) -> Iterator[Metric]:
    last = GaugeMetricFamily(
        "kube_cronjob_status_last_successful_time",
        "LastSuccessfulTime keeps information of when was the last time the "
        "job was successfully completed.",
        labels=["namespace", "cronjob"],
    )
    schedule = GaugeMetricFamily(
        "kube_cronjob_status_last_schedule_time",
        "LastScheduleTime keeps information of when was the last time "
        "the job was successfully scheduled.",
        labels=["namespace", "cronjob"],
    )
    created = GaugeMetricFamily(
        "kube_cronjob_created", "Unix creation timestamp.", labels=["namespace", "cronjob"]
    )
    for cj in snap.cronjobs:
        created.add_metric([cj.namespace, cj.name], cj.created)
        if cj.last_success is not None:
            last.add_metric([cj.namespace, cj.name], cj.last_success)
        if cj.last_schedule is not None:
            schedule.add_metric([cj.namespace, cj.name], cj.last_schedule)
    yield from (last, schedule, created)


def _ingress(snap: Snapshot) -> Iterator[Metric]:
    """ingress-nginx's own request counter (the controller's /metrics, port 10254). Its name
    has no `_total`, which prometheus_client would add to a counter: exposed untyped, which
    PromQL's rate()/increase() treat the same."""
    requests = UnknownMetricFamily(
        "nginx_ingress_controller_requests",
        "The total number of client requests",
        labels=["namespace", "ingress", "host", "service", "path", "method", "status"],
    )
    for c in snap.ingress:
        requests.add_metric(
            [c.namespace, c.ingress, c.host, c.service, c.path, c.method, c.status], c.count
        )
    yield requests


class _SnapshotCollector(Collector):
    def __init__(self, source: Callable[[], Snapshot]) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        yield from families(self.source())


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Scrapes every few seconds would flood the run's log."""


def serve(source: Callable[[], Snapshot], port: int) -> WSGIServer:
    """An HTTP server on 127.0.0.1:`port` exposing `families(source())` at any path.
    The caller runs `serve_forever()` in a thread and `shutdown()` to stop it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(source))
    return make_server("127.0.0.1", port, make_wsgi_app(registry), handler_class=_QuietHandler)
