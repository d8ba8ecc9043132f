"""`finchsim simulate` / `make simulate` on a platform that runs real processes: up, seed data,
drive the load profile through the ingress with Locust, sample what the cluster does, summarise,
keep the evidence, down.

Only the `Platform` seam is used (components, HPAs, `exec_command`, `ingress_url`), so the same
run works on every platform with PROCESSES, EXEC and INGRESS. HPA rescales are read from the
HPAs' own status as sampled (current → desired, with the utilisation against each target that
the HPA reported), the way `kubectl get hpa -w` shows them. The run directory is removed at
teardown, so the evidence is kept in `runs/<run id>/`: the load result, the samples, the
summary."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

from finchsim.load.locust_run import LocustRun
from finchsim.load.results import LoadResult
from finchsim.load.seed import BACKEND, seed
from finchsim.platform.base import Capability, HpaStatus, Platform
from finchsim.project import Project
from finchsim.running import EventLog, run_platform

API_HOST = "api.finch.example.com"
SAMPLE_SECONDS = 1.0
NEEDS = frozenset({Capability.PROCESSES, Capability.EXEC, Capability.INGRESS})


@dataclass(frozen=True)
class Rescale:
    t: float
    hpa: str
    current: int
    desired: int
    why: str  # each metric against its target, as the HPA reported it


@dataclass
class Timeline:
    """What the cluster did while the load ran, sampled from the seam."""

    ready: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    rescales: list[Rescale] = field(default_factory=list)
    _last_desired: dict[str, int] = field(default_factory=dict)

    def sample(self, t: float, platform: Platform) -> None:
        self.ready.append((round(t, 1), {c.name: c.ready for c in platform.components()}))
        for hpa in platform.hpas():
            if hpa.desired == 0:  # no status yet: the HPA has not computed its first proposal
                continue
            before = self._last_desired.get(hpa.name, hpa.current)
            if hpa.desired != before:
                self.rescales.append(Rescale(round(t, 1), hpa.name, before, hpa.desired, _why(hpa)))
            self._last_desired[hpa.name] = hpa.desired


def _why(hpa: HpaStatus) -> str:
    return ", ".join(
        f"{metric} {hpa.utilization.get(metric, 0):.0f}% of {target}% target"
        for metric, target in hpa.targets.items()
    )


def drive(
    platform: Platform,
    project: Project,
    profile: str,
    load_dir: Path,
    say: Callable[[str], None],
    tick: Callable[[], None],
) -> tuple[LoadResult, Timeline]:
    """Seed, then run the profile through the ingress; sample until Locust ends."""
    missing = platform.missing(NEEDS)
    if missing:
        platform.require(missing[0])
    seed(platform, say)
    timeline = Timeline()
    profile_path = project.loadtests / "profiles" / f"{profile}.yaml"
    load_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with LocustRun(profile_path, platform.ingress_url(API_HOST), load_dir, project=project) as run:
        say(f"driving the {profile!r} load profile through the ingress…")
        run.start()
        next_sample = 0.0
        while run.running and (t := time.monotonic() - started) < run.deadline_s:
            platform.poll()
            if t >= next_sample:
                timeline.sample(t, platform)
                next_sample += SAMPLE_SECONDS
            tick()
            time.sleep(0.5)
        run.stop()  # no-op when Locust ended by itself
        return run.collect(), timeline


def summary(result: LoadResult, timeline: Timeline, keep: Path, project: Project) -> list[str]:
    lat = result.latency
    step = max(1, len(timeline.ready) // 12)
    lines = [
        f"requests {result.requests}, failures {result.failures} "
        f"(rate-limited {result.rate_limited_total}), p50 {lat.p50:.0f} ms, "
        f"p95 {lat.p95:.0f} ms, p99 {lat.p99:.0f} ms over {result.duration_s}s",
        "backend replicas ready over time: "
        + " ".join(f"{t:.0f}s:{r.get(BACKEND, 0)}" for t, r in timeline.ready[::step]),
        "HPA rescales during the load:" + ("" if timeline.rescales else " none"),
        *(f"  {r.t:4.0f}s {r.hpa}: {r.current}→{r.desired} ({r.why})" for r in timeline.rescales),
        f"evidence kept in {project.rel(keep)}",
    ]
    return lines


def run_simulate(
    platform: Platform, project: Project, profile: str, out: Console, err: Console, events: EventLog
) -> int:
    """The whole loop once on `platform`; the summary stays on the terminal afterwards."""
    lines: list[str] = []

    def then(p: Platform, tick: Callable[[], None]) -> int:
        run_id = getattr(p, "run_id", time.strftime("%Y%m%d-%H%M%S"))
        keep = project.root / "runs" / run_id
        result, timeline = drive(p, project, profile, keep / "load", out.print, tick)
        (keep / "load-result.json").write_text(json.dumps(result.to_dict(), indent=1))
        (keep / "timeline.json").write_text(
            json.dumps(
                {"ready": timeline.ready, "rescales": [asdict(r) for r in timeline.rescales]},
                indent=1,
            )
        )
        lines.extend(summary(result, timeline, keep, project))
        (keep / "summary.txt").write_text("\n".join(lines) + "\n")
        return 0

    code = run_platform(platform, out, err, events, hold=False, then=then)
    for line in lines:
        out.print(line)
    return code
