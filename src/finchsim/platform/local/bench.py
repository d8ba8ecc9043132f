"""`finchsim bench` / `make bench`: what the local platform costs on this machine.

1. Bare start times: each service of the overlay started alone, one after the other, with the
   exact launch the platform uses (same argv, environment, init containers), timed until its
   readiness check first passes (polled every 0.1 s, not at the probes' periods). Their sum is
   the floor a strictly sequential start could reach.
2. Time to ready of the whole topology (`LocalPlatform.up`): probes at the manifests'
   periods, placement, ingress, monitoring, several replicas each.
3. The stack's memory once ready: PSS (shared pages divided fairly) and RSS summed over
   every process of the topology, and per workload.

The result is printed and kept in `runs/bench-<time>.json`."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

from finchsim.errors import PlatformError
from finchsim.platform.local.controller import Controller
from finchsim.platform.local.monitoring import LocalMonitoring
from finchsim.platform.local.platform import LocalPlatform
from finchsim.platform.local.pods import Pod, check
from finchsim.platform.local.settings import load_settings
from finchsim.platform.manifests import render
from finchsim.platform.ports import free_port
from finchsim.platform.topology import build_topology
from finchsim.project import Project
from finchsim.validate import check_run_inputs

START_TIMEOUT = 120.0


@dataclass
class BenchResult:
    overlay: str
    bare_start_s: dict[str, float] = field(default_factory=dict)
    time_to_ready_s: float = 0.0
    pss_mib: dict[str, float] = field(default_factory=dict)  # per workload + "monitoring"
    rss_mib_total: float = 0.0
    processes: int = 0

    @property
    def bare_sum_s(self) -> float:
        return sum(self.bare_start_s.values())


def bench(project: Project, overlay: str, out: Console) -> BenchResult:
    """Both measurements and the memory; every input is checked before anything starts."""
    check_run_inputs(project, overlay)
    result = BenchResult(overlay)
    out.print("bare services, one at a time…")
    result.bare_start_s = bare_start_times(project, overlay)
    out.print("the whole topology, to ready…")
    platform = LocalPlatform(project, overlay)
    started = time.monotonic()
    try:
        platform.up()
        result.time_to_ready_s = time.monotonic() - started
        for _ in range(10):  # a few seconds of steady state before measuring memory
            platform.step()
            time.sleep(0.5)
        _measure_memory(platform, result)
    finally:
        platform.down()
    _report(result, project, out)
    return result


def bare_start_times(project: Project, overlay: str) -> dict[str, float]:
    """Start each workload's first pod alone, in dependency order, keeping the earlier ones
    running (the backend needs PostgreSQL and Redis); then Prometheus. Seconds per service."""
    topology = build_topology(render(project, overlay))
    settings = load_settings(
        project.cluster / "local" / "platform.yaml", "cluster/local/platform.yaml"
    )
    run_dir = Path(tempfile.mkdtemp(prefix="finchsim-bench-"))
    run_dir.chmod(0o755)  # the postgres OS user must reach its data directory
    ctl = Controller(topology, settings, run_dir, "bench", project.root, None, lambda _m: None)
    order = sorted(topology.workloads.values(), key=lambda w: (w.kind != "StatefulSet", w.name))
    times: dict[str, float] = {}
    pods: list[Pod] = []
    monitoring = None
    try:
        for w in order:
            ordinal = 0 if w.kind == "StatefulSet" else None
            pod = ctl.create_pod(w, f"{w.name}-0" if ordinal == 0 else f"{w.name}-bench", ordinal)
            pod.node = "bench"
            pods.append(pod)
            times[w.name] = _time_to_ready(pod)
        ports = {
            name: free_port() for name in ("prometheus", "alertmanager", "node-exporter", "metrics")
        }
        monitoring = LocalMonitoring(
            run_dir,
            project.cluster / "monitoring",
            ports,
            "5s",
            lambda _p, _l: None,
            lambda _m: None,
        )
        started = time.monotonic()
        monitoring.start()
        _wait_http(ports["prometheus"], "/-/ready", "prometheus")
        times["monitoring (prometheus, alertmanager, node exporter)"] = time.monotonic() - started
    finally:
        if monitoring is not None:
            monitoring.stop()
        for pod in reversed(pods):
            pod.stop(10.0)
        ctl.shutdown()
        shutil.rmtree(run_dir, ignore_errors=True)
    return times


def _time_to_ready(pod: Pod) -> float:
    """From the first start to every container's readiness check passing (or running, for a
    container without one), init containers included."""
    started = time.monotonic()
    while time.monotonic() - started < START_TIMEOUT:
        pod.step(time.monotonic())
        if (
            pod.phase == "Running"
            and all(r.running for r in pod.containers)
            and all(
                check(*pod.probe_target(r, r.spec.readiness), 1.0)
                for r in pod.containers
                if r.spec.readiness is not None
            )
        ):
            return time.monotonic() - started
        time.sleep(0.1)
    logs = {r.spec.name: (r.proc.tail(5) if r.proc else "") for r in pod.containers}
    raise PlatformError(f"bench: {pod.name} not ready after {START_TIMEOUT:.0f}s: {logs}")


def _wait_http(port: int, path: str, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not check("http", port, path, 1.0):
        if time.monotonic() > deadline:
            raise PlatformError(f"bench: {what} not ready after {START_TIMEOUT:.0f}s")
        time.sleep(0.1)


def _measure_memory(platform: LocalPlatform, result: BenchResult) -> None:
    assert platform.controller is not None and platform.monitoring is not None
    groups: dict[str, list[int]] = {}
    for pod in platform.controller.pods.values():
        for run in pod.containers:
            if run.process is not None:
                groups.setdefault(pod.workload.name, []).extend(run.process.tree_pids())
    for proc in platform.monitoring.procs.values():
        groups.setdefault("monitoring", []).extend(proc.proc.tree_pids())
    if platform.ingress is not None:
        groups["ingress"] = platform.ingress.proc.tree_pids()
    rss = 0
    for name, pids in groups.items():
        pss = 0
        for pid in set(pids):
            try:
                info = psutil.Process(pid).memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            pss += info.pss
            rss += info.rss
            result.processes += 1
        result.pss_mib[name] = round(pss / 2**20, 1)
    result.rss_mib_total = round(rss / 2**20, 1)


def _report(result: BenchResult, project: Project, out: Console) -> None:
    table = Table(title=f"finchsim bench ({result.overlay} overlay)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, seconds in result.bare_start_s.items():
        table.add_row(f"bare start: {name}", f"{seconds:.1f} s")
    table.add_row("sum of bare starts", f"{result.bare_sum_s:.1f} s")
    table.add_row("whole topology to ready", f"{result.time_to_ready_s:.1f} s")
    for name, mib in sorted(result.pss_mib.items(), key=lambda kv: -kv[1]):
        table.add_row(f"PSS: {name}", f"{mib:.0f} MiB")
    table.add_row(
        f"stack memory, {result.processes} processes (PSS)",
        f"{sum(result.pss_mib.values()):.0f} MiB",
    )
    table.add_row(
        "stack memory (RSS, counts shared pages twice)", f"{result.rss_mib_total:.0f} MiB"
    )
    out.print(table)
    keep = project.root / "runs" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    keep.parent.mkdir(exist_ok=True)
    keep.write_text(
        json.dumps(
            {
                **asdict(result),
                "bare_sum_s": result.bare_sum_s,
                "machine": {
                    "cpus": psutil.cpu_count(),
                    "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                },
            },
            indent=1,
        )
    )
    out.print(f"kept in {keep}")
