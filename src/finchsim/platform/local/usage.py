"""What each container uses, sampled the way cAdvisor and metrics-server see it.

One /proc pass per sample for every container (cgroup counters when limits are enforced);
the CPU history gives metrics-server's rate over its resolution window to the HPA."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from finchsim.platform.local.pods import Pod
from finchsim.platform.local.processes import children_map

HISTORY = 120  # samples kept per container


class UsageSampler:
    def __init__(self) -> None:
        self.cpu_history: dict[tuple[str, str], list[tuple[float, float]]] = {}

    def sample(self, pods: Iterable[Pod], node_down: Callable[[str], bool]) -> None:
        """Refresh every running container's usage (containers on a dead node report none)."""
        kids = children_map()
        wall = time.time()
        for pod in pods:
            if pod.node and node_down(pod.node):
                continue
            for run in pod.containers:
                proc = run.process
                if proc is None or not run.running:
                    continue
                usage = proc.sample(kids)
                if run.cgroup is not None:
                    stats = run.cgroup.stats()
                    usage = replace(
                        usage,
                        cpu_seconds=stats.cpu_usage_seconds,
                        working_set_bytes=stats.working_set_bytes,
                    )
                run.last_usage = usage
                hist = self.cpu_history.setdefault((pod.name, run.spec.name), [])
                hist.append((wall, usage.cpu_seconds))
                del hist[:-HISTORY]

    def cpu_rate(self, pod: str, container: str, window: float, wall: float) -> float | None:
        """Cores used over the last `window` seconds, or None without two samples in it."""
        recent = [h for h in self.cpu_history.get((pod, container), []) if h[0] >= wall - window]
        if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
            return None
        return (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0])

    def forget(self, pod: str) -> None:
        for key in [k for k in self.cpu_history if k[0] == pod]:
            del self.cpu_history[key]
