"""After SIGKILL of the process that runs the kubelet platform, its pods' processes die with it
(PR_SET_PDEATHSIG) and `finchsim down` stops the control plane it left: nothing remains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from tests.conftest import REPO, run_cli
from tests.kubelet.conftest import wait_for

pytestmark = pytest.mark.kwok

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from finchsim.project import Project
    from finchsim.platform.manifests import Rendered
    from tests.kubelet.conftest import kubelet_platform
    from tests.kubelet.test_kubelet import SERVE, deployment

    objects = [
        Rendered({"apiVersion": "v1", "kind": "Namespace",
                  "metadata": {"name": "kubelet-test"}}, "test"),
        Rendered(deployment("web", SERVE), "test"),
    ]
    platform = kubelet_platform(Project(Path(sys.argv[1])), Path(sys.argv[2]), objects, [])
    platform.up(timeout=120)
    print("UP", platform.run_dir, flush=True)
    time.sleep(600)
    """
)


def ours(run_dir: Path) -> list[str]:
    """Live (non-zombie) processes whose command line or working directory is in `run_dir`."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            text = " ".join(proc.info["cmdline"] or [])
            if str(run_dir) in text or str(run_dir) in proc.cwd():
                found.append(f"{proc.pid} {text[:100]}")
        except psutil.Error:
            continue
    return found


def test_sigkill_then_down_leaves_nothing(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(REPO), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.startswith("UP "), line
        run_dir = Path(line.split()[1])
        registry = run_dir / "kubelet" / "processes.json"
        wait_for(
            "a pod process recorded",
            lambda: registry.exists() and json.loads(registry.read_text()),
            timeout=60,
        )
        before = ours(run_dir)
        pods = json.loads(registry.read_text())
        print("before:", *before, sep="\n  ")
        assert any("http.server" in " ".join(r["argv"]) for r in pods.values())
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()
    # The pods' processes die with the kubelet's thread that forked them.
    for record in pods.values():
        wait_for(f"pod process {record['pid']} gone", lambda r=record: not _alive(r["pid"]), 10)
    left = ours(run_dir)
    print("after SIGKILL:", *left, sep="\n  ")
    assert any("kube-apiserver" in p for p in left)  # the control plane outlives it...
    done = run_cli("down")
    print(done.stdout, done.stderr)
    assert done.returncode == 0
    wait_for("nothing of the run left", lambda: not ours(run_dir), timeout=30)  # ...until down
    assert not run_dir.exists()
    assert not any(Path("/sys/fs/cgroup").glob(f"*/finchsim/{run_dir.name}"))


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
