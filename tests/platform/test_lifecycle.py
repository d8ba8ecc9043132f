"""`finchsim up --platform kwok|local` as a user runs it: kubectl works while it holds, every
stopping signal (Ctrl-C once or three times, SIGTERM twice, SIGHUP, `finchsim down`) and a crash
(SIGKILL, then `finchsim down`) leave nothing behind, a second `up` is refused. On the local
platform "nothing" includes every pod's processes and the edge (nginx, Prometheus).

Each test runs the real CLI in a subprocess on a copy of the project (its own `.finchsim/`
state), and records the control plane's pids so it can prove they are gone afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from finchsim.platform.runstate import read_state
from finchsim.platform.tools import find_tool
from finchsim.project import Project
from tests.conftest import run_cli

pytestmark = pytest.mark.kwok


def wait_ready(
    proc: subprocess.Popen[str], project: Project, platform: str = "kwok"
) -> dict[str, int]:
    """Read the CLI's stdout until it says ready; return the control plane's pids."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("ready in"):
            break
    else:
        raise AssertionError(f"up ended without getting ready: {proc.wait()} {proc.stderr}")
    state = read_state(project)
    assert state is not None and state["platform"] == platform, state
    pids_dir = Path(state["kubeconfig"]).parent / "pids"
    pids = {p.stem: int(p.read_text()) for p in pids_dir.glob("*.pid")}
    assert {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"} <= set(pids)
    return pids


def start_up(
    start_cli: Callable[..., subprocess.Popen[str]], project: Project, platform: str = "kwok"
) -> tuple[subprocess.Popen[str], dict[str, int], dict[str, Any]]:
    """`finchsim up --platform P` until ready: the process, the control plane's pids, the
    run record."""
    proc = start_cli("--project", str(project.root), "up", "--platform", platform)
    pids = wait_ready(proc, project, platform)
    state = read_state(project)
    assert state is not None
    return proc, pids, state


def wait_until(check: Callable[[], Any], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def nothing_left(project: Project, pids: dict[str, int], run_dir: str) -> None:
    alive = {
        n: p
        for n, p in pids.items()
        if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    }
    assert alive == {}, alive
    # Nor any other process of the run (pods' processes, the edge's nginx and Prometheus).
    strays = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
        text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
        if run_dir in text and proc.info["status"] != psutil.STATUS_ZOMBIE:
            strays.append(f"{proc.info['pid']}: {text}")
    assert strays == [], strays
    assert not Path(run_dir).exists()
    assert read_state(project) is None


def test_kubectl_works_while_up_holds_and_ctrl_c_cleans_everything(
    project_copy: Project, start_cli: Callable[..., subprocess.Popen[str]]
) -> None:
    proc, pids, state = start_up(start_cli, project_copy)
    done = run_cli("--project", str(project_copy.root), "kubeconfig")
    assert done.returncode == 0 and done.stdout.strip() == state["kubeconfig"], done
    nodes = subprocess.run(
        [find_tool("kubectl"), "--kubeconfig", state["kubeconfig"], "get", "nodes", "-o", "name"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert nodes.returncode == 0 and "node/worker-0" in nodes.stdout.split(), nodes
    second = run_cli("--project", str(project_copy.root), "up", "--platform", "kwok")
    assert second.returncode == 5, second
    assert "a topology is already up" in second.stderr
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    nothing_left(project_copy, pids, state["run_dir"])


@pytest.mark.parametrize("platform", ["kwok", "local"])
def test_after_a_crash_down_stops_the_control_plane(
    project_copy: Project, start_cli: Callable[..., subprocess.Popen[str]], platform: str
) -> None:
    proc, pids, state = start_up(start_cli, project_copy, platform)
    os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up
    proc.wait(timeout=30)
    assert all(psutil.pid_exists(p) for p in pids.values()), "the cluster outlives the crash"
    done = run_cli("--project", str(project_copy.root), "down")
    assert done.returncode == 0, done
    assert done.stdout.strip() == f"run {state['run_id']} ({platform}) is down"
    nothing_left(project_copy, pids, state["run_dir"])


@pytest.mark.parametrize("platform", ["kwok", "local"])
@pytest.mark.parametrize(
    ("signals", "code"),
    [
        ((signal.SIGINT, signal.SIGINT, signal.SIGINT), 130),
        ((signal.SIGTERM, signal.SIGTERM), 143),
        ((signal.SIGHUP,), 129),
    ],
    ids=["ctrl-c x3", "sigterm x2", "sighup"],
)
def test_every_stopping_signal_cleans_everything_however_often_it_comes(
    project_copy: Project,
    start_cli: Callable[..., subprocess.Popen[str]],
    signals: tuple[signal.Signals, ...],
    code: int,
    platform: str,
) -> None:
    proc, pids, state = start_up(start_cli, project_copy, platform)
    proc.send_signal(signals[0])
    assert proc.stderr is not None
    assert any(line.startswith("stopping…") for line in proc.stderr)  # tearing down now
    for sig in signals[1:]:
        proc.send_signal(sig)
    assert proc.wait(timeout=120) == code
    nothing_left(project_copy, pids, state["run_dir"])


@pytest.mark.parametrize("platform", ["kwok", "local"])
def test_down_stops_a_running_up_which_exits_143(
    project_copy: Project, start_cli: Callable[..., subprocess.Popen[str]], platform: str
) -> None:
    proc, pids, state = start_up(start_cli, project_copy, platform)
    done = run_cli("--project", str(project_copy.root), "down")
    assert done.returncode == 0, done
    assert proc.wait(timeout=120) == 143
    nothing_left(project_copy, pids, state["run_dir"])


def test_simulate_killed_under_load_leaves_nothing_once_down(
    project_copy: Project, start_cli: Callable[..., subprocess.Popen[str]]
) -> None:
    """SIGKILL of `simulate` while Locust drives load: Locust dies with it (nothing else
    would stop it: `down` knows only the platform's processes), and `down` does the rest."""
    proc = start_cli("--project", str(project_copy.root), "simulate", "--profile", "smoke")
    pids = wait_ready(proc, project_copy, "local")
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("driving the"):
            break
    root = str(project_copy.root)

    def locusts() -> list[int]:
        found = []
        for p in psutil.process_iter(["pid", "cmdline", "status"]):
            cmdline = " ".join(p.info["cmdline"] or [])
            if "locust" in cmdline and root in cmdline and p.info["status"] != "zombie":
                found.append(p.info["pid"])
        return found

    wait_until(lambda: locusts(), "Locust running")
    state = read_state(project_copy)
    assert state is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    wait_until(lambda: not locusts(), "Locust gone with simulate")
    done = run_cli("--project", root, "down")
    assert done.stdout.strip() == f"run {state['run_id']} (local) is down", done
    nothing_left(project_copy, pids, state["run_dir"])
