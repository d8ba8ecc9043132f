"""The kubelet's prober: startup, liveness and readiness probes with the manifests' timings.

Probes run on a small thread pool so a slow endpoint never stalls the reconcile loop; results
are collected on the next tick. A failed liveness (or startup) probe restarts the container; a
failed readiness probe takes the pod out of its Services' endpoints."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from finchsim.platform.local.pods import ContainerRun, Pod, check


class Prober:
    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="probe")
        self.inflight: dict[tuple[str, str, str], Future[bool]] = {}

    def run(self, pod: Pod, now: float) -> None:
        """Collect finished probes, start the due ones, and update the pod's readiness."""
        for run in pod.containers:
            self._collect(pod, run, now)
            startup_needed = run.spec.startup is not None and not run.startup.passed
            for kind in ["startup"] if startup_needed else ["liveness", "readiness"]:
                probe = getattr(run.spec, kind)
                key = (pod.name, run.spec.name, kind)
                if (
                    probe is None
                    or key in self.inflight
                    or not pod.probe_due(run, kind, probe, now)
                ):
                    continue
                getattr(run, kind).last_run = now
                target = pod.probe_target(run, probe)
                self.inflight[key] = self.pool.submit(check, *target, probe.timeout)
        ready = (
            bool(pod.containers)
            and pod.phase == "Running"
            and all(
                r.running
                and (r.spec.readiness is None or r.readiness.passed)
                and (r.spec.startup is None or r.startup.passed)
                for r in pod.containers
            )
        )
        if ready != pod.ready:
            pod.ready = ready
            pod.ready_transition = time.time()
            self.log(f"{pod.name}: {'Ready' if ready else 'NotReady'}")

    def _collect(self, pod: Pod, run: ContainerRun, now: float) -> None:
        for kind in ("startup", "liveness", "readiness"):
            key = (pod.name, run.spec.name, kind)
            future = self.inflight.get(key)
            if future is None or not future.done():
                continue
            del self.inflight[key]
            probe = getattr(run.spec, kind)
            state = getattr(run, kind)
            if future.result():
                state.successes, state.failures = state.successes + 1, 0
                if state.successes >= probe.success_threshold:
                    state.passed = True
                continue
            state.failures, state.successes = state.failures + 1, 0
            if state.failures < probe.failure_threshold:
                continue
            if kind == "readiness":
                state.passed = False
            else:
                self.log(
                    f"{pod.name}/{run.spec.name}: {kind} probe failed {state.failures}x, restarting"
                )
                pod.restart_container(run, now)
                return

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
