"""Shared fixtures for every test layer."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from finchsim.project import Project

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project() -> Project:
    """The checkout under test, with its set-up secrets present."""
    from finchsim.platform.secrets import ensure_secrets

    proj = Project(REPO)
    ensure_secrets(proj)
    return proj


@pytest.fixture
def scratch_project(tmp_path: Path) -> Callable[[dict[str, str]], Project]:
    """A throwaway project made of the given files (path -> text), for bad-input tests."""

    def make(files: dict[str, str]) -> Project:
        for folder in ("cluster/overlays", "scenarios", "loadtests", "analysis"):
            (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        for rel, text in files.items():
            path = tmp_path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        return Project(tmp_path)

    return make


@pytest.fixture
def project_copy(tmp_path: Path, project: Project) -> Project:
    """A copy of the checkout's inputs (generated secrets included), to break as a user would."""
    root = tmp_path / "finch-sim"
    ignore = shutil.ignore_patterns("node_modules", "__pycache__")
    for folder in ("cluster", "loadtests", "analysis"):
        shutil.copytree(project.root / folder, root / folder, ignore=ignore)
    return Project(root)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `finchsim` entry point in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "finchsim.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd or REPO,
        timeout=300,
        check=False,
    )
