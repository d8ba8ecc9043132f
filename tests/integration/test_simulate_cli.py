"""`finchsim simulate` end to end, as `make simulate` runs it, on a short profile: up, seed,
load through the ingress, summary on stdout, evidence in `runs/<run id>/`, nothing left."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from finchsim.platform.runstate import state_path
from finchsim.project import Project
from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.integration


@pytest.mark.kwok
def test_simulate_drives_load_and_keeps_the_evidence(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    for name in ("cluster", "loadtests", "analysis"):
        (root / name).symlink_to(REPO / name)
    done = run_cli("--project", str(root), "simulate", "--profile", "smoke")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    totals = next((line for line in lines if line.startswith("requests ")), "")
    match = re.match(r"requests (\d+), failures (\d+) ", totals)
    assert match, done.stdout
    requests, failures = int(match[1]), int(match[2])
    assert requests > 0 and failures == 0, totals
    kept = next(line for line in lines if line.startswith("evidence kept in "))
    keep = root / kept.removeprefix("evidence kept in ")
    result = json.loads((keep / "load-result.json").read_text())
    assert result["requests"] == requests
    timeline = json.loads((keep / "timeline.json").read_text())
    assert timeline["ready"] and timeline["ready"][0][1]["finch-backend"] >= 1
    assert (keep / "summary.txt").read_text().splitlines()[0] == totals
    assert not state_path(Project(root)).exists()
    assert not list(Path("/tmp").glob(f"finchsim-{keep.name}"))
