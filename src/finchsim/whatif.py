"""`finchsim simulate --platform kwok [--nodes N] [--traffic X]`: a what-if on the real
controllers, at a size this machine could not run for real.

The load profile is not run by Locust: its offered rate (`load.offered`) times `traffic` is fed
to the load model, which sets every pod's CPU and memory on the kwok nodes; the real HPAs,
scheduler and controllers react. Every few seconds the run samples the replicas of each
workload, the pending pods and how full the nodes are (requests against allocatable, as the
scheduler sees it), and ends with a summary: peak replicas per HPA and whether it hit its
maximum, the most pods pending, the fullest node. The samples are kept in
`runs/<run id>/whatif.json`."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import yaml
from rich.console import Console

from finchsim.load.offered import offered_rps
from finchsim.load.profile import LoadProfile, load_profile
from finchsim.platform.base import Platform
from finchsim.platform.manifests import render
from finchsim.platform.registry import KWOK_SETTINGS, PlatformOptions, create
from finchsim.platform.topology import Topology, build_topology
from finchsim.running import EventLog, run_platform

SAMPLE_SECONDS = 5.0


@dataclass(frozen=True)
class Sample:
    t: float
    offered: dict[str, float]
    desired: dict[str, int]
    ready: dict[str, int]
    pending: int
    fullest_node_cpu: float  # requested / allocatable, 0..1


@dataclass
class WhatIf:
    nodes: int
    traffic: float
    profile: str
    up_seconds: float = 0.0
    wall_seconds: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    hpa_max: dict[str, int] = field(default_factory=dict)

    def peak(self, workload: str) -> int:
        return max((s.desired.get(workload, 0) for s in self.samples), default=0)

    def summary(self, topology: Topology) -> list[str]:
        lines = [
            f"what-if: {self.nodes} nodes, {self.traffic:g}x the {self.profile!r} profile; up in "
            f"{self.up_seconds:.0f}s, {self.wall_seconds:.0f}s wall in all",
        ]
        for hpa in topology.hpas.values():
            peak = self.peak(hpa.target)
            capped = " (at maxReplicas: the HPA wanted more)" if peak >= hpa.max_replicas else ""
            lines.append(
                f"  {hpa.target}: {hpa.min_replicas} -> peak {peak} of max "
                f"{hpa.max_replicas}{capped}"
            )
        pending = max((s.pending for s in self.samples), default=0)
        fullest = max((s.fullest_node_cpu for s in self.samples), default=0.0)
        lines.append(
            f"  most pods pending at once: {pending}; fullest node: "
            f"{fullest:.0%} of its CPU requested"
        )
        return lines


def settings_with_nodes(settings_file: Path, nodes: int | None, directory: Path) -> Path:
    """A copy of the kwok settings with the first node pool at `nodes` (unchanged if None)."""
    doc = yaml.safe_load(settings_file.read_text())
    if nodes is not None:
        doc["nodePools"][0]["count"] = nodes
    path = directory / "kwok-cluster.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _node_fullness(platform: Platform, topology: Topology) -> float:
    requested: dict[str, int] = {}
    for pod in platform.pods():
        w = topology.workloads.get(pod.owner)
        if pod.node and w is not None and not pod.deleting:
            requested[pod.node] = requested.get(pod.node, 0) + w.requests.cpu_request_m
    return max(
        (
            requested.get(n.name, 0) / n.cpu_allocatable_m
            for n in platform.nodes()
            if n.cpu_allocatable_m
        ),
        default=0.0,
    )


def drive(
    platform: Platform,
    profile: LoadProfile,
    topology: Topology,
    result: WhatIf,
    say: Callable[[str], None],
    tick: Callable[[], None] = lambda: None,
) -> WhatIf:
    """Feed the profile's offered load for its planned length; sample every few seconds."""
    started = time.monotonic()
    end = profile.planned_seconds
    next_sample = 0.0
    while (t := time.monotonic() - started) < end:
        offered = offered_rps(profile, t, result.traffic)
        platform.offer_load(offered)
        if t >= next_sample:
            components = platform.components()
            pods = platform.pods()
            result.samples.append(
                Sample(
                    round(t, 1),
                    {k: round(v, 1) for k, v in offered.items()},
                    {c.name: c.desired for c in components},
                    {c.name: c.ready for c in components},
                    sum(1 for p in pods if p.phase == "Pending"),
                    round(_node_fullness(platform, topology), 3),
                )
            )
            s = result.samples[-1]
            say(
                f"{t:5.0f}s  offered {sum(offered.values()):7.1f} req/s  "
                + "  ".join(
                    f"{h.target} {s.ready.get(h.target, 0)}/{s.desired.get(h.target, 0)}"
                    for h in topology.hpas.values()
                )
                + f"  pending {s.pending}"
            )
            next_sample += SAMPLE_SECONDS
        platform.poll()
        tick()
        time.sleep(1.0)
    platform.offer_load({})
    return result


def keep(result: WhatIf, runs: Path, run_id: str) -> Path:
    path = runs / run_id / "whatif.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(result), indent=1))
    return path


def run_whatif(
    opts: PlatformOptions,
    platform_name: str,
    profile_name: str,
    nodes: int | None,
    traffic: float,
    out: Console,
    err: Console,
    events: EventLog,
) -> tuple[int, WhatIf]:
    """Up (with `nodes` in the first kwok pool), drive, summarise, keep, down; (exit code,
    result)."""
    project = opts.project
    profile_path = project.loadtests / "profiles" / f"{profile_name}.yaml"
    profile = load_profile(profile_path, project.rel(profile_path))
    topology = build_topology(render(project, opts.overlay))
    result = WhatIf(nodes or 0, traffic, profile_name)
    with tempfile.TemporaryDirectory(prefix="finchsim-whatif-") as tmp:
        if platform_name == "kwok":
            base = project.root / KWOK_SETTINGS
            opts = replace(opts, settings=settings_with_nodes(base, nodes, Path(tmp)))
        platform = create(platform_name, opts)
        started = time.monotonic()

        def then(p: Platform, tick: Callable[[], None]) -> int:
            result.up_seconds = time.monotonic() - started
            result.nodes = len(p.nodes())
            drive(p, profile, topology, result, out.print, tick)
            return 0

        code = run_platform(platform, out, err, events, hold=False, then=then)
        result.wall_seconds = time.monotonic() - started
    if code == 0:
        for line in result.summary(topology):
            out.print(line)
        run_id = getattr(platform, "run_id", time.strftime("%Y%m%d-%H%M%S"))
        out.print(f"samples kept in {project.rel(keep(result, project.root / 'runs', run_id))}")
    return code, result
