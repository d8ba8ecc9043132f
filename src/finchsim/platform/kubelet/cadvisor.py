"""`/metrics/cadvisor`: the usual cAdvisor series per container, from its cgroup (CPU, CFS
throttling, memory, OOM events) or, without one, from its process tree; labelled
container/namespace/pod/image like the kubelet's embedded cAdvisor."""

from __future__ import annotations

import contextlib
import time

from finchsim.platform.kubelet.container import ContainerRun
from finchsim.platform.local.processes import children_map

PERIOD_S = 0.1

FAMILIES = {
    "container_cpu_usage_seconds_total": ("counter", "Cumulative cpu time consumed in seconds."),
    "container_memory_working_set_bytes": ("gauge", "Current working set in bytes."),
    "container_memory_usage_bytes": ("gauge", "Current memory usage in bytes."),
    "container_cpu_cfs_periods_total": ("counter", "Number of elapsed enforcement periods."),
    "container_cpu_cfs_throttled_periods_total": ("counter", "Number of throttled periods."),
    "container_cpu_cfs_throttled_seconds_total": ("counter", "Total time throttled."),
    "container_oom_events_total": ("counter", "Count of out of memory events observed."),
    "container_spec_cpu_quota": ("gauge", "CPU quota of the container."),
    "container_spec_cpu_period": ("gauge", "CPU period of the container."),
    "container_spec_memory_limit_bytes": ("gauge", "Memory limit for the container."),
    "container_start_time_seconds": ("gauge", "Start time of the container since unix epoch."),
}


def _series(
    namespace: str, pod: str, run: ContainerRun, kids: dict[int, list[int]]
) -> dict[str, float]:
    values: dict[str, float] = {
        "container_start_time_seconds": run.started_wall,
        "container_spec_memory_limit_bytes": float(run.spec.resources.memory_limit),
    }
    if run.spec.resources.cpu_limit_m:
        values["container_spec_cpu_period"] = PERIOD_S * 1e6
        values["container_spec_cpu_quota"] = run.spec.resources.cpu_limit_m * 100.0
    stats = None
    if run.cgroup is not None:
        with contextlib.suppress(OSError, ValueError):
            stats = run.cgroup.stats()
    if stats is not None:
        values.update(
            {
                "container_cpu_usage_seconds_total": stats.cpu_usage_seconds,
                "container_memory_working_set_bytes": float(stats.working_set_bytes),
                "container_memory_usage_bytes": float(stats.memory_usage_bytes),
                "container_cpu_cfs_periods_total": float(stats.nr_periods),
                "container_cpu_cfs_throttled_periods_total": float(stats.nr_throttled),
                "container_cpu_cfs_throttled_seconds_total": stats.throttled_seconds,
            }
        )
        if stats.oom_kills is not None:
            values["container_oom_events_total"] = float(stats.oom_kills)
    elif run.proc is not None:
        usage = run.proc.sample(kids)
        values["container_cpu_usage_seconds_total"] = usage.cpu_seconds
        values["container_memory_working_set_bytes"] = float(usage.working_set_bytes)
        values["container_memory_usage_bytes"] = float(usage.rss_bytes)
    return values


def render(runs: list[tuple[str, str, ContainerRun]]) -> str:
    """The exposition text for one node's running containers."""
    kids = children_map()
    ms = int(time.time() * 1000)
    rows: dict[str, list[str]] = {name: [] for name in FAMILIES}
    for namespace, pod, run in runs:
        labels = (
            f'container="{run.spec.name}",image="{run.image}",namespace="{namespace}",'
            f'pod="{pod}",name="{run.container_id}"'
        )
        for name, value in _series(namespace, pod, run, kids).items():
            rows[name].append(f"{name}{{{labels}}} {value:.9g} {ms}")
    lines: list[str] = []
    for name, (kind, help_text) in FAMILIES.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *rows[name]]
    return "\n".join(lines) + "\n"
