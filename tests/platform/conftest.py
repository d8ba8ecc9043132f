"""A real platform per test module, brought up from the project's own files.

The kwok platform runs the real control plane from the pinned cache (`make controlplane`),
with the test timings below instead of Kubernetes' defaults so that HPA scale-in, node
failure and evictions happen within a test's patience. Every value that matters to an
assertion is read back from these settings, never repeated in a test."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from finchsim.platform.base import Platform
from finchsim.platform.registry import PlatformOptions, create
from finchsim.project import Project
from tests.conftest import REPO
from tests.kubelet.conftest import settings_file as kubelet_settings_file

NS = "finch-production"
# Chosen for the tests: short enough to see scale-in, NotReady and evictions in a minute or
# two. metrics-server keeps its 15 s resolution: it must exceed its 10 s kubelet timeout.
TEST_TIMINGS = {
    "nodeMonitorGracePeriod": "20s",
    "nodeMonitorPeriod": "2s",
    "nodeLeaseDuration": "10s",
    "hpaSyncPeriod": "5s",
    "hpaDownscaleStabilization": "20s",
    "notReadyToleration": "10s",
    "unreachableToleration": "10s",
}


def kwok_settings_file(project: Project, directory: Path, **timings: str) -> Path:
    """A copy of cluster/kwok/cluster.yaml with the test timings (and any overrides)."""
    doc = yaml.safe_load((project.cluster / "kwok" / "cluster.yaml").read_text())
    doc["timings"] = {**doc.get("timings", {}), **TEST_TIMINGS, **timings}
    path = directory / "kwok-cluster.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def bring_up(
    name: str,
    project: Project,
    directory: Path,
    events: list[str],
    overlay: str = "production",
    timeout: float = 240,
    **timings: Any,
) -> Platform:
    """Platform `name` up with the test timings; `timings` override fields of its settings'
    `timings` (each platform's own names and units)."""
    settings = {
        "kwok": lambda: kwok_settings_file(project, directory, **timings),
        "local": lambda: kubelet_settings_file(project, directory, **timings),
    }.get(name, lambda: None)()
    platform = create(name, PlatformOptions(project, overlay, log=events.append, settings=settings))
    platform.up(timeout=timeout)
    return platform


@contextlib.contextmanager
def brought_up(name: str, project: Project, directory: Path) -> Iterator[Platform]:
    """`bring_up` for a module fixture: the platform, brought down at the end."""
    platform = bring_up(name, project, directory, [])
    try:
        yield platform
    finally:
        platform.down()


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("kwok", marks=pytest.mark.kwok),
        pytest.param("local", marks=pytest.mark.kwok),
    ],
)
def platform(
    request: pytest.FixtureRequest, project: Project, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    """A platform with the production overlay up, for one test module."""
    events: list[str] = []
    platform = bring_up(request.param, project, tmp_path_factory.mktemp("platform"), events)
    try:
        yield platform
    finally:
        platform.down()


@pytest.fixture
def project_copy(project_copy: Project) -> Iterator[Project]:
    """The project copy of tests/conftest.py, with whatever a failed test left up brought down."""
    yield project_copy
    subprocess.run(
        [sys.executable, "-m", "finchsim.cli", "--project", str(project_copy.root), "down"],
        capture_output=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )


@pytest.fixture
def start_cli() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start `finchsim <args>` in the background (text pipes); every process started is
    interrupted if still running, reaped and its pipes closed at the end of the test."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "finchsim.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
