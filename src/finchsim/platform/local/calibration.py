"""`finchsim calibrate` on the local platform: up, seed data, measure the load model, down.

(`finchsim simulate` is `finchsim.simulate`, the same on every platform that runs processes.)"""

from __future__ import annotations

from rich.console import Console

from finchsim.durations import parse_duration
from finchsim.load.seed import seed
from finchsim.platform.local.live import run_up
from finchsim.platform.local.platform import LocalPlatform
from finchsim.project import Project
from finchsim.validate import check_run_inputs


def calibrate(project: Project, overlay: str, out: Console, err: Console, profile: str) -> int:
    """`finchsim calibrate`: up, seed, measure the load model (`finchsim.calibrate`), down."""
    from finchsim.calibrate import measure, write_model

    check_run_inputs(project, overlay, profile=profile)
    profile_path = project.loadtests / "profiles" / f"{profile}.yaml"

    def drive(platform: LocalPlatform) -> int:
        seed(platform, out.print)
        load_dir = platform.run_dir / "calibrate"
        load_dir.mkdir()
        scrape = parse_duration(platform.settings.timings.scrapeInterval)
        model = measure(platform, profile_path, load_dir, {}, out.print, scrape)
        path = write_model(project.root, model, platform.run_id, overlay, profile)
        out.print(f"wrote {project.rel(path)}")
        return 0

    return run_up(project, overlay, out, err, hold=False, then=drive)
