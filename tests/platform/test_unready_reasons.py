"""When `up` gives up waiting, it says why each workload's pods are not ready: the crashing
container's last exit, the image that cannot be pulled, the failing probe, the scheduler's
message for a Pending pod (the reasons themselves: tests/unit/test_unready_reasons.py).

A small overlay of four Deployments, each broken in one way, in a copy of the project, on the
local platform: its kubelet runs them, so every reason is a real one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from finchsim.errors import PlatformError
from finchsim.platform.local.settings import load_settings
from finchsim.platform.runstate import read_state
from finchsim.project import Project
from tests.kubelet.test_kubelet import SERVE, deployment
from tests.platform.conftest import bring_up

pytestmark = pytest.mark.kwok
TIMEOUT = 30  # long enough for a crash loop's back-off and three failed probes


def broken_overlay(project: Project) -> None:
    crash = "import sys; print('boom: cannot reach the database', flush=True); sys.exit(3)"
    probe = {"httpGet": {"path": "/nope", "port": "http"}, "periodSeconds": 1}
    broken = [
        deployment("big", ["sleep", "600"], resources={"requests": {"cpu": "64"}}),
        deployment("crasher", ["python3", "-c", crash]),
        deployment("noimage", ["serve"], image="example.com/nothing:1.0"),
        deployment("unready", SERVE, readinessProbe=probe),
    ]
    broken[1]["spec"]["replicas"] = 2
    overlay = project.cluster / "overlays" / "broken"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "namespace: demo\nbuildMetadata: [originAnnotations]\nresources: [broken.yaml]\n"
    )
    (overlay / "broken.yaml").write_text(yaml.safe_dump_all(broken))


def test_the_timeout_message_gives_a_reason_per_unready_workload(
    project_copy: Project, tmp_path: Path
) -> None:
    broken_overlay(project_copy)
    nodes = load_settings(project_copy.cluster / "local" / "platform.yaml").nodes.count
    with pytest.raises(PlatformError) as info:
        bring_up("local", project_copy, tmp_path, [], overlay="broken", timeout=TIMEOUT)
    message = str(info.value)
    print(message)
    lines = message.splitlines()
    assert lines[0] == f"not rolled out after {TIMEOUT}s:"
    waiting = [line for line in lines[1:] if line.startswith("  demo/deployment ")]
    assert [w.split(":")[0] for w in waiting] == [
        f"  demo/deployment {name}" for name in ("big", "crasher", "noimage", "unready")
    ], lines
    pods = lines[1 + len(waiting) :]
    expected = [
        rf"pod demo/big-\S+ \(Deployment big\): Pending: 0/{nodes} nodes are available: "
        rf"{nodes} Insufficient cpu\..*",
        # Between two crashes the container may be starting again: the last exit is the point.
        r"pod demo/crasher-\S+ \(Deployment crasher, 1 more unready\): container main(:| not "
        r"ready:) .*; last exit code 3 \(Error\), restarted \d+ time\(s\); "
        r"it printed: .*boom: cannot reach the database",
        r"pod demo/noimage-\S+ \(Deployment noimage\): container main: (ErrImagePull|"
        r'ImagePullBackOff): .*"example\.com/nothing:1\.0".*',
        r"pod demo/unready-\S+ \(Deployment unready\): container main not ready: Readiness "
        r"probe failed.*",
    ]
    assert len(pods) == len(expected), lines
    for line, pattern in zip(pods, expected, strict=True):
        assert re.fullmatch(f"  {pattern}", line), (line, pattern)
    assert read_state(project_copy) is None, "up did not clean up after the timeout"
