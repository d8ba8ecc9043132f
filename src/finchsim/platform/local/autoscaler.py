"""The HPA controller's loop: every sync period, each HPA reads its pods' metrics (as
metrics-server would report them) and runs the algorithm in `hpa`; every decision is appended
with its inputs to `hpa-decisions.jsonl` in the run directory."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from finchsim.models import hpa as hpa_algo
from finchsim.models.hpa_model import Hpa
from finchsim.platform.local.pods import Pod
from finchsim.platform.local.settings import Timings
from finchsim.platform.local.usage import UsageSampler

DECISIONS_FILE = "hpa-decisions.jsonl"


@dataclass
class HpaRuntime:
    state: hpa_algo.HpaState = field(default_factory=hpa_algo.HpaState)
    last_sync: float = 0.0
    desired: int = 0
    utilization: dict[str, float] = field(default_factory=dict)


class Autoscaler:
    def __init__(
        self,
        hpas: dict[str, Hpa],
        timings: Timings,
        usage: UsageSampler,
        run_dir: Path,
        log: Callable[[str], None],
    ) -> None:
        self.hpas = hpas
        self.timings = timings
        self.usage = usage
        self.log = log
        self.runtimes = {name: HpaRuntime() for name in hpas}
        self.decisions = (run_dir / DECISIONS_FILE).open("a")

    def sync(self, now: float, pods: Iterable[Pod], replicas: dict[str, int]) -> None:
        """Run every HPA whose sync period has passed; rescale `replicas` in place."""
        pods = list(pods)
        settings = hpa_algo.ControllerSettings(
            downscale_stabilization=self.timings.hpaDownscaleStabilization,
            cpu_initialization_period=self.timings.hpaCpuInitializationPeriod,
            initial_readiness_delay=self.timings.hpaInitialReadinessDelay,
        )
        for name, spec in self.hpas.items():
            rt = self.runtimes[name]
            if now - rt.last_sync < self.timings.hpaSyncPeriod or spec.target not in replicas:
                continue
            rt.last_sync = now
            wall = time.time()
            samples = [self._sample(p, wall) for p in pods if p.workload.name == spec.target]
            current = replicas[spec.target]
            decision = hpa_algo.sync(spec, rt.state, current, samples, wall, settings)
            rt.state = decision.state
            rt.desired = decision.final_replicas
            rt.utilization = {
                m.resource: float(m.utilization)
                for m in decision.metrics
                if m.utilization is not None
            }
            self.decisions.write(
                json.dumps(
                    {
                        "time": wall,
                        "hpa": name,
                        "current": current,
                        "desired": decision.final_replicas,
                        "reason": decision.reason,
                        "decision": decision.record(),
                    },
                    default=str,
                )
                + "\n"
            )
            self.decisions.flush()
            if decision.rescale:
                self.log(f"{name}: {decision.reason}")
                replicas[spec.target] = decision.final_replicas

    def _sample(self, pod: Pod, wall: float) -> hpa_algo.PodSample:
        """The pod as metrics-server and the API server would show it to the HPA."""
        window = self.timings.metricsResolution
        usage: dict[str, int] = {}
        rates = [
            self.usage.cpu_rate(pod.name, run.spec.name, window, wall) for run in pod.containers
        ]
        if rates and all(r is not None for r in rates):
            usage["cpu"] = int(sum(r for r in rates if r is not None) * 1000)
        memory = sum(
            run.last_usage.working_set_bytes for run in pod.containers if run.last_usage is not None
        )
        if memory:
            usage["memory"] = memory
        requests = {
            "cpu": sum(r.spec.resources.cpu_request_m for r in pod.containers),
            "memory": sum(r.spec.resources.memory_request for r in pod.containers),
        }
        return hpa_algo.PodSample(
            name=pod.name,
            ready=pod.ready,
            start_time=pod.created,
            ready_transition=pod.ready_transition,
            usage=usage,
            requests={k: v for k, v in requests.items() if v},
            phase="Pending" if not pod.node else "Running",
            deleting=pod.deleting,
            sample_time=wall,
            sample_window=window,
        )

    def close(self) -> None:
        self.decisions.close()
