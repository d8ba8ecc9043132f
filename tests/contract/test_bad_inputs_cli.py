"""Bad input as a new user writes it, in a copy of the real project, through the real CLI: each
case is caught offline by `finchsim validate`, and by every run command before it starts
anything, with one line naming the file and field and exit 2, never "a finchsim bug"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from finchsim.project import Project

INVALID = "invalid input: {} problem(s)"
BACKEND = "cluster/base/backend.yaml: Deployment/{}/finch-backend"
CPU = "spec.template.spec.containers[0].resources.requests.cpu: invalid quantity 'lots'"
REPLICAS = "spec.replicas: must be greater than or equal to 0, got -3"
SCRAPE = (
    "cluster/local/platform.yaml: timings.scrapeInterval: Value error, expected a duration "
    "like 30s, 30m, 1h or 7d, got '5 seconds'"
)
FIX = "run `finchsim secrets` (or `make setup`) to generate it"


def finchsim(proj: Project, *args: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run the CLI on `proj` as a user would; also return its pid (it names the run dir)."""
    with subprocess.Popen(
        [sys.executable, "-m", "finchsim.cli", "--project", str(proj.root), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), proc.pid


def edit(proj: Project, rel: str, old: str, new: str, count: int = 1) -> None:
    path = proj.root / rel
    text = path.read_text()
    assert text.count(old) >= count, f"{rel} no longer holds {old!r}"
    path.write_text(text.replace(old, new, count))


def assert_nothing_started(proj: Project, pid: int) -> None:
    assert not (proj.root / ".finchsim").exists(), "a run was recorded"
    assert not (proj.root / "runs").exists(), "a run kept evidence"
    assert not list(Path("/tmp").glob(f"finchsim-*-{pid}")), "a run directory was made"


def test_a_scrape_interval_prometheus_refuses(project_copy: Project) -> None:
    edit(
        project_copy,
        "cluster/local/platform.yaml",
        "scrapeInterval: 5s",
        "scrapeInterval: 5 seconds",
    )
    done, _ = finchsim(project_copy, "validate")
    assert (done.returncode, done.stderr.splitlines()) == (2, [SCRAPE, INVALID.format(1)])
    done, pid = finchsim(project_copy, "up")
    assert (done.returncode, done.stderr.splitlines()) == (2, [SCRAPE, INVALID.format(1)])
    assert_nothing_started(project_copy, pid)


def test_a_bad_quantity_and_a_negative_count(project_copy: Project) -> None:
    backend = "cluster/base/backend.yaml"
    edit(project_copy, backend, "replicas: 3", "replicas: -3")
    # The main container's request (the init container's comes first in the file).
    edit(project_copy, backend, "cpu: 250m", "cpu: §", 2)
    edit(project_copy, backend, "cpu: §", "cpu: 250m")
    edit(project_copy, backend, "cpu: §", "cpu: lots")
    done, _ = finchsim(project_copy, "validate")
    assert done.returncode == 2, done.stderr
    # production and recommended share the namespace, so their lines are one; staging's
    # replicas come from its own patch.
    assert done.stderr.splitlines() == [
        f"{BACKEND.format('finch-production')} {REPLICAS}",
        f"{BACKEND.format('finch-production')} {CPU}",
        f"{BACKEND.format('finch-staging')} {CPU}",
        INVALID.format(3),
    ]
    for command in ("up", "bench"):
        done, pid = finchsim(project_copy, command, "--overlay", "staging")
        assert (done.returncode, done.stderr.splitlines()) == (
            2,
            [f"{BACKEND.format('finch-staging')} {CPU}", INVALID.format(1)],
        ), command
        assert_nothing_started(project_copy, pid)


def test_an_empty_generated_secret_file(project_copy: Project) -> None:
    (project_copy.cluster / "secrets" / "app" / "finch.env").write_text("")
    done, _ = finchsim(project_copy, "validate")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        f"cluster/secrets/app/finch.env: {key}: missing (Secret finch-secrets, read by "
        f"Deployment/finch-backend): {FIX}"
        for key in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "DJANGO_SECRET_KEY")
    ] + [INVALID.format(3)]
    done, _ = finchsim(project_copy, "secrets")
    assert (done.returncode, done.stdout.splitlines()) == (
        0,
        [
            "added POSTGRES_PASSWORD, REDIS_PASSWORD, DJANGO_SECRET_KEY to "
            "cluster/secrets/app/finch.env"
        ],
    )
    done, _ = finchsim(project_copy, "validate")
    assert done.returncode == 0, done.stderr


def test_simulate_checks_its_load_profile_before_starting_anything(project_copy: Project) -> None:
    edit(
        project_copy, "loadtests/profiles/simulate.yaml", "maxRequests: 6000", "maxRequests: [6000"
    )
    done, pid = finchsim(project_copy, "simulate")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "loadtests/profiles/simulate.yaml: line 25: invalid YAML: expected ',' or ']', but got ':'",
        INVALID.format(1),
    ]
    assert done.stdout == ""
    assert_nothing_started(project_copy, pid)


def test_a_run_lists_every_problem_of_every_input_at_once(project_copy: Project) -> None:
    edit(
        project_copy, "loadtests/profiles/simulate.yaml", "maxDuration: 130s", "maxDuration: 2 min"
    )
    edit(project_copy, "analysis/targets.yaml", "rto: 30m", "rto: half an hour")
    edit(
        project_copy,
        "cluster/local/platform.yaml",
        "scrapeInterval: 5s",
        "scrapeInterval: 5 seconds",
    )
    edit(project_copy, "cluster/base/backend.yaml", "replicas: 3", "replicas: -3")
    edit(project_copy, "cluster/base/postgres.yaml", "image: postgres:", "image: mysql:")
    done, pid = finchsim(project_copy, "simulate")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert lines[:4] == [
        "loadtests/profiles/simulate.yaml: maxDuration: expected a duration like 30s, 30m, 1h "
        "or 7d, got '2 min'",
        "analysis/targets.yaml: recovery.rto: Value error, expected a duration like 30s, 30m, "
        "1h or 7d, got 'half an hour'",
        f"{BACKEND.format('finch-production')} {REPLICAS}",
        SCRAPE,  # what the platform reads comes after the overlay
    ]
    assert lines[4].startswith("cluster/base/postgres.yaml: container postgres: image 'mysql:"), (
        lines[4]
    )
    assert lines[4].endswith("has no local runtime; the local platform knows: " + KNOWN)
    assert lines[5:] == [INVALID.format(5)]
    assert_nothing_started(project_copy, pid)


KNOWN = (
    "finch-sim/finch-backend, finch-sim/finch-frontend, postgres, postgres-exporter, python, "
    "redis, redis_exporter"
)
