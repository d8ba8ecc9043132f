"""The whole Finch production overlay on the kubelet platform: every workload rolled out and
Ready, each pod on its own loopback address, measured by metrics-server."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path

import pytest

from finchsim.platform.kubernetes.client import Clients
from finchsim.platform.registry import PlatformOptions, create
from finchsim.project import Project
from tests.kubelet.conftest import settings_file, wait_for

pytestmark = pytest.mark.kwok
NS = "finch-production"


def test_production_overlay_comes_up_ready(project: Project, tmp_path: Path) -> None:
    events: list[str] = []
    options = PlatformOptions(
        project, "production", log=events.append, settings=settings_file(project, tmp_path)
    )
    platform = create("local", options)
    started = time.monotonic()
    try:
        platform.up(timeout=300)
        print(f"ready in {time.monotonic() - started:.1f}s", events)
        api = Clients.connect(platform.kubeconfig(), tmp_path / "discovery.json")
        pods = api.core.list_namespaced_pod(NS).items
        for pod in pods:
            ready = {c.type: c.status for c in pod.status.conditions}.get("Ready")
            print(pod.metadata.name, pod.spec.node_name, pod.status.pod_ip, ready)
            assert ready == "True"
            assert ipaddress.ip_address(pod.status.pod_ip).is_loopback
        assert len({p.status.pod_ip for p in pods}) == len(pods)
        names = {p.metadata.name for p in pods}

        def measured() -> object:
            items = api.custom.list_namespaced_custom_object(
                "metrics.k8s.io", "v1beta1", NS, "pods"
            )["items"]
            return {m["metadata"]["name"] for m in items} >= names and items

        wait_for("metrics of every pod", measured, timeout=120, every=3)
        api.close()
    finally:
        platform.down()
