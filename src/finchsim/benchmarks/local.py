"""`finchsim bench --only local` / `make bench`: the local platform (the real control plane
with finch's kubelet) against the issue's budget, every number from the same run:

1. the bare control-plane start: kwokctl's control plane alone, to serving;
2. the bare service starts (`benchmarks.bare`): each workload's first pod started alone on the
   real platform, in dependency order, from creation to Ready;
3. the whole topology (`up`) to every workload rolled out, control plane included; then its
   memory and the finchsim process's idle CPU.

Budget: time to ready ≤ 1.5 x (bare service starts + bare control-plane start) and ≤ 30 s;
the whole stack ≤ 2 GiB PSS on the production overlay — every process of the run (the control
plane kwokctl started, the pods' processes, the edge, finchsim itself); the kubelet's own CPU
≤ 5 % of a core idle — the finchsim process (kubelet, Service proxy, exporters and the
platform's loop are its threads) over an idle minute.

Printed as one table, and kept in `runs/bench-local-<time>.json`."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
from kubernetes import client, config
from rich.console import Console
from rich.table import Table

from finchsim.benchmarks.bare import bare_start_times
from finchsim.platform.controlplane.binaries import controlplane_binaries
from finchsim.platform.controlplane.kwokctl import (
    ControlPlaneTimings,
    KwokctlCluster,
    kwokctl_config,
)
from finchsim.platform.registry import PlatformOptions, create
from finchsim.project import Project

PLATFORM = "local"
IDLE_SECONDS = 60.0
BUDGET_READY_FACTOR, BUDGET_READY_S = 1.5, 30.0
BUDGET_PSS_MIB, BUDGET_IDLE_CPU = 2048.0, 0.05


@dataclass
class LocalBench:
    overlay: str
    bare_start_s: dict[str, float] = field(default_factory=dict)  # per workload
    # How long after the bare platform's `up` its Prometheus answered ready (`up` does not
    # wait for the monitoring, so this is not a start on the way to ready: not in the sum).
    monitoring_ready_after_up_s: float | None = None
    bare_control_plane_s: float = 0.0
    ready_s: float = 0.0
    restarts: dict[str, int] = field(default_factory=dict)  # by pod, init containers included
    pss_mib: dict[str, float] = field(default_factory=dict)  # per program
    processes: int = 0
    idle_cpu_share: float = 0.0  # of one core, the finchsim process

    @property
    def bare_services_s(self) -> float:
        return sum(self.bare_start_s.values())

    @property
    def bare_sum_s(self) -> float:
        return self.bare_services_s + self.bare_control_plane_s

    def verdicts(self) -> list[tuple[str, str, bool]]:
        total = sum(self.pss_mib.values())
        limit = min(BUDGET_READY_FACTOR * self.bare_sum_s, BUDGET_READY_S)
        return [
            (
                "time to ready",
                f"{self.ready_s:.1f} s (budget {limit:.1f} s: 1.5 x {self.bare_sum_s:.1f} s "
                f"bare starts, at most {BUDGET_READY_S:.0f} s)",
                self.ready_s <= limit,
            ),
            (
                "whole stack (PSS)",
                f"{total:.0f} MiB in {self.processes} processes (budget {BUDGET_PSS_MIB:.0f})",
                total <= BUDGET_PSS_MIB,
            ),
            (
                "kubelet idle CPU",
                f"{self.idle_cpu_share:.1%} of a core (budget {BUDGET_IDLE_CPU:.0%})",
                self.idle_cpu_share <= BUDGET_IDLE_CPU,
            ),
        ]

    def table(self) -> Table:
        table = Table(title=f"finchsim bench: local platform ({self.overlay} overlay)")
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_column("verdict")
        for name, seconds in self.bare_start_s.items():
            table.add_row(f"bare start: {name}", f"{seconds:.1f} s", "")
        table.add_row("bare control-plane start", f"{self.bare_control_plane_s:.1f} s", "")
        table.add_row("sum of bare starts", f"{self.bare_sum_s:.1f} s", "")
        if self.monitoring_ready_after_up_s is not None:
            table.add_row(
                "Prometheus ready after the bare platform's up (not in the sum)",
                f"{self.monitoring_ready_after_up_s:.1f} s",
                "",
            )
        table.add_row(
            "container restarts until ready",
            "\n".join(f"{k} {v}" for k, v in sorted(self.restarts.items())) or "none",
            "",
        )
        for name, mib in sorted(self.pss_mib.items(), key=lambda kv: -kv[1]):
            table.add_row(f"PSS: {name}", f"{mib:.0f} MiB", "")
        for name, value, ok in self.verdicts():
            table.add_row(name, value, "within budget" if ok else "OVER budget")
        return table


def bare_control_plane_s(project: Project) -> float:
    """The control plane alone, as the kubelet platform starts it, to serving."""
    binaries = controlplane_binaries(project).by_name()
    workdir = Path(tempfile.mkdtemp(prefix="finchsim-bench-cp-"))
    cluster = KwokctlCluster("bench", workdir, binaries)
    started = time.monotonic()
    try:
        cluster.create(kwokctl_config(binaries, ControlPlaneTimings()))
        return time.monotonic() - started
    finally:
        cluster.delete()
        shutil.rmtree(workdir, ignore_errors=True)


def pod_restarts(kubeconfig: Path) -> dict[str, int]:
    """Restarts of every pod that had any, init containers included (a crashed init container
    is restarted after the kubelet's crash-loop back-off, like any other)."""
    api = config.new_client_from_config(str(kubeconfig))
    try:
        found = {}
        for pod in client.CoreV1Api(api).list_pod_for_all_namespaces().items:
            statuses = (pod.status.init_container_statuses or []) + (
                pod.status.container_statuses or []
            )
            if count := sum(c.restart_count for c in statuses):
                found[pod.metadata.name] = count
        return found
    finally:
        api.close()


def program_name(cmdline: list[str], comm: str) -> str:
    """What a process is, for memory per program: its executable; for a Python interpreter its
    script or `-m` package (gunicorn, celery, finchsim itself); the kernel's name (`comm`) for a
    process that rewrote its title (`postgres: walwriter`, `nginx: worker process`)."""
    if not cmdline or " " in cmdline[0] or cmdline[0].endswith(":"):
        return comm
    name = os.path.basename(cmdline[0])
    if not name.startswith("python"):
        return name or comm
    args = iter(cmdline[1:])
    for arg in args:
        if arg == "-m":
            return next(args, name).split(".")[0]
        if arg == "-c":
            return name
        if not arg.startswith("-"):
            return os.path.basename(arg)
    return name


def stack_pss(run_dir: Path) -> tuple[dict[str, float], int]:
    """PSS (MiB) per program of every process of the run: finchsim's own tree, and what was
    started outside it (kwokctl's control plane) but runs from the run directory."""
    me = psutil.Process()
    pids = {me.pid} | {p.pid for p in me.children(recursive=True)}
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
        if str(run_dir) in text:
            pids.add(proc.info["pid"])
    per_program: Counter[str] = Counter()
    counted = 0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            pss = proc.memory_full_info().pss
            name = program_name(proc.cmdline(), proc.name())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        per_program[name] += pss
        counted += 1
    return {k: round(v / 2**20, 1) for k, v in per_program.items()}, counted


def idle_cpu_share(poll: Callable[[], None], seconds: float) -> float:
    """CPU time of this process (every thread) per wall second while the platform idles."""
    me = psutil.Process()
    before, started = me.cpu_times(), time.monotonic()
    while time.monotonic() - started < seconds:
        poll()
        time.sleep(1.0)
    after = me.cpu_times()
    used = (after.user - before.user) + (after.system - before.system)
    return float(used / (time.monotonic() - started))


def bench_local(project: Project, overlay: str, out: Console) -> LocalBench:
    """Every measurement in one run, printed as a table and kept in runs/; the run's inputs
    are checked by the caller before anything starts."""
    result = LocalBench(overlay)
    result.bare_control_plane_s = bare_control_plane_s(project)
    out.print(f"bare control-plane start: {result.bare_control_plane_s:.1f} s")
    out.print("bare services, one pod at a time on the real platform…")
    result.bare_start_s, result.monitoring_ready_after_up_s = bare_start_times(
        project, overlay, out.print
    )
    out.print("the whole topology, to ready…")
    platform = create(PLATFORM, PlatformOptions(project, overlay))
    started = time.monotonic()
    try:
        platform.up()
        result.ready_s = time.monotonic() - started
        result.restarts = pod_restarts(platform.kubeconfig())
        run_dir = Path(getattr(platform, "run_dir"))  # noqa: B009 (every Kubernetes platform has one)
        result.pss_mib, result.processes = stack_pss(run_dir)
        result.idle_cpu_share = idle_cpu_share(platform.poll, IDLE_SECONDS)
    finally:
        platform.down()
    out.print(result.table())
    keep = project.root / "runs" / f"bench-local-{time.strftime('%Y%m%d-%H%M%S')}.json"
    keep.parent.mkdir(exist_ok=True)
    summary = {"bare_services_s": result.bare_services_s, "bare_sum_s": result.bare_sum_s}
    machine = {
        "cpus": psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_1m": round(os.getloadavg()[0], 2),
    }
    keep.write_text(json.dumps({**asdict(result), **summary, "machine": machine}, indent=1))
    out.print(f"kept in {keep}")
    return result
