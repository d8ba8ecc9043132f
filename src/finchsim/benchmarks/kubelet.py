"""`make bench` on the local platform over the real control plane (our kubelet), against the
issue's budget, in the same run as the emulated platform's bare starts:

- time to ready (control plane included) ≤ 1.5 x the sum of the bare service starts plus the
  bare control-plane start, and ≤ 30 s;
- the whole stack ≤ 2 GiB PSS on the production overlay: every process of the run (the
  control plane kwokctl started, the pods' processes, the edge, and finchsim itself);
- the kubelet's own CPU ≤ 5 % of a core when idle: the finchsim process (kubelet, Service
  proxy, exporters and the platform's loop are its threads) over an idle minute.

Printed, and kept in `runs/bench-kubelet-<time>.json`."""

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
class KubeletBench:
    bare_services_s: float = 0.0
    bare_control_plane_s: float = 0.0
    ready_s: float = 0.0
    pss_mib: dict[str, float] = field(default_factory=dict)
    processes: int = 0
    idle_cpu_share: float = 0.0  # of one core, the finchsim process

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
            name = os.path.basename((proc.cmdline() or [proc.name()])[0]) or proc.name()
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


def measure(project: Project, bare_services_s: float, say: Callable[[str], None]) -> KubeletBench:
    result = KubeletBench(bare_services_s=bare_services_s)
    result.bare_control_plane_s = bare_control_plane_s(project)
    say(f"bare control-plane start: {result.bare_control_plane_s:.1f} s")
    platform = create(PLATFORM, PlatformOptions(project, "production"))
    started = time.monotonic()
    try:
        platform.up()
        result.ready_s = time.monotonic() - started
        run_dir = Path(getattr(platform, "run_dir"))  # noqa: B009 (every Kubernetes platform has one)
        result.pss_mib, result.processes = stack_pss(run_dir)
        result.idle_cpu_share = idle_cpu_share(platform.poll, IDLE_SECONDS)
    finally:
        platform.down()
    for name, value, ok in result.verdicts():
        say(f"{name}: {value}: {'within' if ok else 'OVER'} budget")
    keep = project.root / "runs" / f"bench-kubelet-{time.strftime('%Y%m%d-%H%M%S')}.json"
    keep.parent.mkdir(exist_ok=True)
    keep.write_text(json.dumps({**asdict(result), "bare_sum_s": result.bare_sum_s}, indent=1))
    return result
