"""The Dockerfiles cannot be built here (no Docker engine): check that what they COPY exists
and that they keep the pods' security constraints (non-root, writable paths under /tmp)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.workload.helpers import WORKLOAD

pytestmark = pytest.mark.integration
# Dockerfile -> its build context (see the header comment of each Dockerfile).
IMAGES = {
    WORKLOAD / "backend" / "Dockerfile": WORKLOAD,
    WORKLOAD / "frontend" / "Dockerfile": WORKLOAD / "frontend",
}


def copied_sources(dockerfile: Path) -> list[str]:
    sources = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


@pytest.mark.parametrize("dockerfile", sorted(IMAGES), ids=lambda p: p.parent.name)
def test_copied_files_exist_in_the_context(dockerfile: Path) -> None:
    sources = copied_sources(dockerfile)
    assert sources
    missing = [s for s in sources if not (IMAGES[dockerfile] / s).exists()]
    assert not missing, f"{dockerfile} copies missing files: {missing}"


@pytest.mark.parametrize("dockerfile", sorted(IMAGES), ids=lambda p: p.parent.name)
def test_runs_as_a_numeric_non_root_user(dockerfile: Path) -> None:
    users = re.findall(r"^USER\s+(\S+)", dockerfile.read_text(), re.M)
    assert users and users[-1].split(":")[0].isdigit() and users[-1] != "0", users


def test_backend_requirements_pin_the_venv_versions() -> None:
    from importlib.metadata import version

    lines = (WORKLOAD / "backend" / "requirements.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))
    assert pins, "requirements.txt pins nothing"
    for name, pinned in pins.items():
        assert version(name.split("[")[0]) == pinned, f"{name}: venv has {version(name)}"
