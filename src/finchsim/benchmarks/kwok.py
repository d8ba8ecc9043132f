"""`make bench` on the kwok platform: bring-up time, the HPA model's fidelity, a big what-if.

1. up: `up --platform kwok` with the production pool, from nothing to every Deployment and
   StatefulSet rolled out (the control plane's start included), and its idle memory (RSS of
   the control-plane processes).
2. fidelity: the pure HPA model against the real HPA on the same CPU traces
   (`benchmarks.hpa_fidelity`): sync periods where their replica counts agree, per trace.
3. scale: 100 simulated nodes and a 1000-replica Deployment, time to available.
4. what-if: 100 nodes at 10x the `simulate` profile's traffic (`finchsim.whatif`), wall time.
Each is printed and kept in `runs/bench-kwok-<time>.json`."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
import yaml
from kubernetes import client, config
from rich.console import Console

from finchsim.benchmarks.hpa_fidelity import Fidelity
from finchsim.platform.registry import KWOK_SETTINGS, PlatformOptions, create
from finchsim.project import Project
from finchsim.running import EventLog
from finchsim.validate import check_run_inputs

FIDELITY_BAR = 0.95


@dataclass
class KwokBench:
    up_seconds: float = 0.0
    control_plane_rss_mib: dict[str, float] = field(default_factory=dict)
    fidelity: dict[str, tuple[int, int]] = field(default_factory=dict)
    fidelity_periods: dict[str, list[tuple[float, int, int]]] = field(default_factory=dict)
    whatif_wall_seconds: float = 0.0
    scale_nodes_seconds: float = 0.0
    scale_pods_seconds: float = 0.0

    @property
    def agreement(self) -> float:
        agree = sum(a for a, _ in self.fidelity.values())
        total = sum(n for _, n in self.fidelity.values())
        return agree / total if total else 0.0


def _rss_mib(kubeconfig: Path) -> dict[str, float]:
    """RSS of each control-plane process, found by its pid file beside the kubeconfig."""
    rss = {}
    for pid_file in sorted((kubeconfig.parent / "pids").glob("*.pid")):
        try:
            rss[pid_file.stem] = round(
                psutil.Process(int(pid_file.read_text())).memory_info().rss / 2**20, 1
            )
        except (psutil.NoSuchProcess, ValueError):
            continue
    return rss


def _trajectory(replicas: list[int]) -> str:
    """2→3→5: each replica count once, in the order they came."""
    steps: list[int] = []
    for n in replicas:
        if not steps or steps[-1] != n:
            steps.append(n)
    return "→".join(str(n) for n in steps) or "none"


def measure_up(project: Project, result: KwokBench, say: Callable[[str], None]) -> None:
    platform = create("kwok", PlatformOptions(project, "production"))
    started = time.monotonic()
    try:
        platform.up()
        result.up_seconds = time.monotonic() - started
        say(f"up --platform kwok: every workload rolled out in {result.up_seconds:.1f}s")
        result.control_plane_rss_mib = _rss_mib(platform.kubeconfig())
        rss = result.control_plane_rss_mib
        say(
            f"control plane RSS with the topology up: {sum(rss.values()):.0f} MiB ("
            + ", ".join(f"{k} {v:.0f}" for k, v in rss.items())
            + ")"
        )
    finally:
        platform.down()


SCALE_NODES, SCALE_PODS = 100, 1000


def measure_scale(project: Project, result: KwokBench, say: Callable[[str], None]) -> None:
    """100 simulated nodes registered and a 1000-replica Deployment available, timed."""
    doc = yaml.safe_load((project.root / KWOK_SETTINGS).read_text())
    doc["nodePools"][0]["count"] = SCALE_NODES
    with tempfile.TemporaryDirectory(prefix="finchsim-bench-") as tmp:
        settings = Path(tmp) / "kwok-cluster.yaml"
        settings.write_text(yaml.safe_dump(doc))
        platform = create("kwok", PlatformOptions(project, "production", settings=settings))
        try:
            started = time.monotonic()
            platform.up()
            result.scale_nodes_seconds = time.monotonic() - started
            api = client.AppsV1Api(config.new_client_from_config(str(platform.kubeconfig())))
            deployment = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "scale", "namespace": "default"},
                "spec": {
                    "replicas": SCALE_PODS,
                    "selector": {"matchLabels": {"app": "scale"}},
                    "template": {
                        "metadata": {"labels": {"app": "scale"}},
                        "spec": {
                            "containers": [
                                {
                                    "name": "app",
                                    "image": "registry.k8s.io/pause:3.10",
                                    "resources": {"requests": {"cpu": "10m"}},
                                }
                            ]
                        },
                    },
                },
            }
            started = time.monotonic()
            api.create_namespaced_deployment("default", deployment)
            platform.wait_for(
                lambda: (
                    (
                        api.read_namespaced_deployment("scale", "default").status.available_replicas
                        or 0
                    )
                    >= SCALE_PODS
                ),
                600,
                f"{SCALE_PODS} pods available",
            )
            result.scale_pods_seconds = time.monotonic() - started
            api.api_client.close()
        finally:
            platform.down()
    say(
        f"{SCALE_NODES} nodes: topology up in {result.scale_nodes_seconds:.0f}s; a "
        f"{SCALE_PODS}-replica Deployment available {result.scale_pods_seconds:.0f}s later"
    )


def measure_fidelity(project: Project, result: KwokBench, say: Callable[[str], None]) -> None:
    """Default controller timings; a pool big enough for five HPAs at their maximum."""
    doc = yaml.safe_load((project.root / KWOK_SETTINGS).read_text())
    doc["nodePools"] = [
        {"name": "bench", "count": 8, "cpu": "8", "memory": "32Gi", "zones": ["zone-a", "zone-b"]}
    ]
    period = float(str(doc["timings"]["hpaSyncPeriod"]).rstrip("s"))
    with tempfile.TemporaryDirectory(prefix="finchsim-bench-") as tmp:
        settings = Path(tmp) / "kwok-cluster.yaml"
        settings.write_text(yaml.safe_dump(doc))
        platform = create("kwok", PlatformOptions(project, "production", settings=settings))
        try:
            platform.up()
            fidelity = Fidelity(platform.kubeconfig(), period, say)
            try:
                fidelity.setup()
                say("HPA fidelity: five traces for 6 minutes against the real HPA…")
                result.fidelity = fidelity.run()
                result.fidelity_periods = {n: r.periods for n, r in fidelity.runs.items()}
            finally:
                fidelity.close()
        finally:
            platform.down()
    for name, (agree, total) in result.fidelity.items():
        path = _trajectory([real for _, _, real in result.fidelity_periods.get(name, [])])
        say(f"  {name}: {agree}/{total} sync periods agree; real replicas {path}")
    say(f"HPA model vs real HPA: {result.agreement:.1%} of periods agree (bar {FIDELITY_BAR:.0%})")


WHATIF_NODES, WHATIF_TRAFFIC = 100, 10.0


def run_kwok_bench(project: Project, parts: list[str], out: Console, err: Console) -> KwokBench:
    """The selected kwok parts (`kwok-up`, `fidelity`, `whatif`), printed and kept."""
    from finchsim.whatif import run_whatif

    check_run_inputs(project, "production", profile="simulate", platform="kwok")
    result = KwokBench()
    if "kwok-up" in parts:
        measure_up(project, result, out.print)
    if "scale" in parts:
        measure_scale(project, result, out.print)
    if "fidelity" in parts:
        measure_fidelity(project, result, out.print)
    if "whatif" in parts:
        events = EventLog()
        code, whatif = run_whatif(
            PlatformOptions(project, "production", log=events.append),
            "kwok",
            "simulate",
            WHATIF_NODES,
            WHATIF_TRAFFIC,
            out,
            err,
            events,
        )
        if code == 0:
            result.whatif_wall_seconds = whatif.wall_seconds
            out.print(
                f"what-if ({WHATIF_NODES} nodes, {WHATIF_TRAFFIC:g}x traffic) answered in "
                f"{whatif.wall_seconds:.0f}s wall (bar 300 s)"
            )
    keep = project.root / "runs" / f"bench-kwok-{time.strftime('%Y%m%d-%H%M%S')}.json"
    keep.parent.mkdir(exist_ok=True)
    keep.write_text(json.dumps({**asdict(result), "agreement": result.agreement}, indent=1))
    out.print(f"kept in {project.rel(keep)}")
    return result
