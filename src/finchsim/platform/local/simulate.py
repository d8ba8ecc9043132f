"""`finchsim simulate` / `make simulate`: up, seed data, baseline load, summary, down.

The run's evidence is kept in `runs/<run id>/` (load result, HPA decisions, summary), because
the live run directory is removed at teardown."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from rich.console import Console

from finchsim.durations import parse_duration
from finchsim.load.locust_run import LocustRun
from finchsim.platform.local.autoscaler import DECISIONS_FILE
from finchsim.platform.local.live import render_view, run_up
from finchsim.platform.local.platform import LocalPlatform
from finchsim.project import Project
from finchsim.validate import check_run_inputs

DATA_SIZE = "20MB"  # enough rows for real queries; seeds in about a second
PROFILE = "simulate"


def seed(platform: LocalPlatform, out: Console) -> None:
    """Synthetic Finch data, deterministic (seed 42), through the backend's own command."""
    out.print(f"seeding {DATA_SIZE} of synthetic Finch data…")
    platform.exec_in(
        "finch-backend",
        ["python", "manage.py", "generate_data", "--size", DATA_SIZE, "--seed", "42"],
    )


def calibrate(project: Project, overlay: str, out: Console, err: Console, profile: str) -> int:
    """`finchsim calibrate`: up, seed, measure the load model (`finchsim.calibrate`), down."""
    from finchsim.calibrate import measure, write_model

    check_run_inputs(project, overlay, profile=profile)
    profile_path = project.loadtests / "profiles" / f"{profile}.yaml"

    def drive(platform: LocalPlatform) -> int:
        seed(platform, out)
        load_dir = platform.run_dir / "calibrate"
        load_dir.mkdir()
        scrape = parse_duration(platform.settings.timings.scrapeInterval)
        model = measure(platform, profile_path, load_dir, {}, out.print, scrape)
        path = write_model(project.root, model, platform.run_id, overlay, profile)
        out.print(f"wrote {project.rel(path)}")
        return 0

    return run_up(project, overlay, out, err, hold=False, then=drive)


def simulate(
    project: Project, overlay: str, out: Console, err: Console, profile: str = PROFILE
) -> int:
    """Run the whole loop once; return the exit code. Every input is checked first."""
    check_run_inputs(project, overlay, profile=profile)
    profile_path = project.loadtests / "profiles" / f"{profile}.yaml"

    def drive(platform: LocalPlatform) -> int:
        seed(platform, out)
        load_dir = platform.run_dir / "load"
        load_dir.mkdir()
        replicas: list[tuple[float, dict[str, int]]] = []
        started = time.monotonic()
        with LocustRun(
            profile_path, platform.ingress_url("api.finch.example.com"), load_dir, project=project
        ) as run:
            out.print(f"driving the {profile!r} load profile through the ingress…")
            run.start()
            while run.running and time.monotonic() - started < run.deadline_s:
                platform.step()
                replicas.append(
                    (
                        time.monotonic() - started,
                        {w.name: w.ready for w in platform.snapshot_value.workloads},
                    )
                )
                time.sleep(0.5)
            run.stop()  # no-op when Locust ended by itself
            result = run.collect()
        keep = project.root / "runs" / platform.run_id
        keep.mkdir(parents=True, exist_ok=True)
        for name in (DECISIONS_FILE,):
            if (platform.run_dir / name).exists():
                shutil.copy(platform.run_dir / name, keep / name)
        (keep / "load-result.json").write_text(json.dumps(result.to_dict(), indent=1))
        summary = _summary(platform, result, replicas, keep)
        (keep / "summary.txt").write_text(summary)
        out.print(summary)
        out.print(render_view(platform, []))
        return 0

    return run_up(project, overlay, out, err, hold=False, then=drive)


def _summary(
    platform: LocalPlatform,
    result: object,
    replicas: list[tuple[float, dict[str, int]]],
    keep: Path,
) -> str:
    from finchsim.load.results import LoadResult

    assert isinstance(result, LoadResult)
    lat = result.latency
    lines = [
        f"requests {result.requests}, failures {result.failures} "
        f"(rate-limited {result.rate_limited_total}), p50 {lat.p50:.0f} ms, "
        f"p95 {lat.p95:.0f} ms, p99 {lat.p99:.0f} ms over {result.duration_s}s",
        "backend replicas over time: "
        + " ".join(
            f"{t:.0f}s:{r.get('finch-backend', 0)}"
            for t, r in replicas[:: max(1, len(replicas) // 12)]
        ),
        *_rescales(
            keep / DECISIONS_FILE,
            time.time() - result.duration_s,
            platform.settings.timings.hpaDownscaleStabilization,
        ),
        f"Prometheus (while up): {platform.prometheus_url()}; evidence kept in {keep}",
    ]
    return "\n".join(lines)


def _rescales(decisions: Path, started_at: float, window: float) -> list[str]:
    """Each HPA rescale during the load, with the reason the controller gave."""
    lines = []
    if decisions.exists():
        for line in decisions.read_text().splitlines():
            d = json.loads(line)
            if d["desired"] != d["current"] and d["time"] >= started_at:
                lines.append(
                    f"  {d['time'] - started_at:4.0f}s {d['hpa']}: {d['current']}→"
                    f"{d['desired']}: {d['reason']}"
                )
    head = (
        "HPA rescales during the load:"
        if lines
        else ("HPA rescales during the load: none (see the decision log for why)")
    )
    return [
        head,
        *lines,
        f"  (scale-in waits for the {window:.0f} s downscale stabilisation "
        "window; a run this short may end before it)",
    ]
