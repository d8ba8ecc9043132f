"""`finchsim validate` lets a real kube-apiserver judge what the offline schemas cannot: a
LimitRange maximum and Pod Security "restricted", applied by admission to the pods the
workloads would create. Through the CLI, on a copy of the project, exact lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from finchsim.project import Project
from tests.conftest import run_cli

pytestmark = pytest.mark.kwok  # throwaway API servers from the pinned control-plane cache


def edit(project: Project, rel: str, old: str, new: str) -> None:
    path = project.root / rel
    text = path.read_text()
    assert old in text, (rel, old)
    path.write_text(text.replace(old, new, 1))


def test_admission_refusals_are_reported_with_file_and_object(project_copy: Project) -> None:
    # The backend's CPU limit above the namespace LimitRange's 1-core maximum ...
    edit(project_copy, "cluster/base/backend.yaml", "cpu: 500m", 'cpu: "4"')
    # ... and a worker that may escalate privileges, which "restricted" forbids.
    edit(
        project_copy,
        "cluster/base/worker.yaml",
        "allowPrivilegeEscalation: false",
        "allowPrivilegeEscalation: true",
    )
    done = run_cli("--project", str(project_copy.root), "validate")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    for ns in ("finch-production", "finch-staging"):
        assert (
            f"cluster/base/backend.yaml: Deployment/{ns}/finch-backend (its pods): pods "
            '"finch-backend-dry-run" is forbidden: maximum cpu usage per Container is 1, but '
            "limit is 4"
        ) in lines, lines
        worker = next(
            line
            for line in lines
            if line.startswith(f"cluster/base/worker.yaml: Deployment/{ns}/finch-worker")
        )
        assert 'violates PodSecurity "restricted:v1.34": allowPrivilegeEscalation != false' in (
            worker
        ), worker
    assert lines[-1] == f"invalid input: {len(lines) - 1} problem(s)"


def test_no_server_skips_the_dry_run(project_copy: Project) -> None:
    edit(project_copy, "cluster/base/backend.yaml", "cpu: 500m", 'cpu: "4"')
    done = run_cli("--project", str(project_copy.root), "validate", "--no-server")
    assert done.returncode == 0, done.stderr
    assert "server-side dry run" not in done.stdout
    assert not list(Path(project_copy.root).glob(".finchsim/*"))
