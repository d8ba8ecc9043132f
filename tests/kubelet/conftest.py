"""The `kubelet` platform's provider on a real control plane, with a namespace of test objects
instead of the Finch overlay (the overlay's own test is in test_overlay.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from finchsim.platform.controlplane import controlplane_binaries
from finchsim.platform.kubernetes.client import Clients
from finchsim.platform.kubernetes.platform import KubernetesPlatform
from finchsim.platform.local.settings import load_settings
from finchsim.platform.manifests import Rendered, load_file
from finchsim.platform.providers.local import LocalProvider
from finchsim.project import Project

NS = "kubelet-test"
# Short node timings so a failed node turns NotReady within a test's patience.
# A short volume-stats period so a walk made before a database's initdb is soon redone.
TEST_TIMINGS = {"nodeMonitorGracePeriod": 20, "podEvictionTimeout": 10, "volumeStatsAggPeriod": 5}
LEASE_SECONDS = 10


def settings_file(project: Project, directory: Path, **timings: Any) -> Path:
    doc = yaml.safe_load((project.cluster / "local" / "platform.yaml").read_text())
    doc["timings"] = {**doc.get("timings", {}), **TEST_TIMINGS, **timings}
    path = directory / "platform.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def kubelet_platform(
    project: Project, directory: Path, objects: list[Rendered], events: list[str]
) -> KubernetesPlatform:
    path = settings_file(project, directory)
    provider = LocalProvider(
        load_settings(path),
        controlplane_binaries(project).by_name(),
        load_file(project, project.cluster / "kwok" / "storage.yaml"),
        project.root,
        lease_seconds=LEASE_SECONDS,
    )
    return KubernetesPlatform(project, "production", provider, objects, log=events.append)


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = 60.0, every: float = 0.25
) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


@pytest.fixture(scope="module")
def events() -> list[str]:
    """What the module's platform logged."""
    return []


@pytest.fixture(scope="module")
def up(
    project: Project, tmp_path_factory: pytest.TempPathFactory, events: list[str]
) -> Iterator[KubernetesPlatform]:
    namespace = Rendered(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}, "test"
    )
    platform = kubelet_platform(project, tmp_path_factory.mktemp("kubelet"), [namespace], events)
    started = time.monotonic()
    platform.up(timeout=120)
    print(f"kubelet platform up in {time.monotonic() - started:.1f}s: {events}")
    try:
        yield platform
    finally:
        platform.down()


@pytest.fixture(scope="module")
def api(up: KubernetesPlatform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    clients = Clients.connect(up.kubeconfig(), tmp_path_factory.mktemp("d") / "discovery.json")
    yield clients
    clients.close()
