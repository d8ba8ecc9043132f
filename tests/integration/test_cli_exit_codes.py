"""`finchsim up` as a real subprocess: a platform failure exits 5 with one `error:` line, and
Ctrl-C (SIGINT to its process group) or SIGTERM once the bring-up has started (the local
platform's control plane answering, PostgreSQL's and Redis's pods running) stops it and leaves
nothing behind: no process of the run, no run directory, no state file, no cgroup.

Each test runs against a scratch project (the checkout's input folders symlinked into a
directory of pytest's, mode 0700), so its `.finchsim/current.json` is its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from finchsim.errors import PlatformError
from finchsim.platform.kubernetes.client import Clients
from finchsim.platform.kubernetes.states import pod_state
from finchsim.platform.registry import cleanup
from finchsim.project import Project
from tests.conftest import REPO, run_cli

pytestmark = pytest.mark.integration
CGROUP_ROOT = Path("/sys/fs/cgroup")
UP_STAGING = ("up", "--overlay", "staging")  # one replica each: the quickest bring-up


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A project of its own whose input folders are the checkout's."""
    root = tmp_path / "project"
    root.mkdir()
    for name in ("cluster", "loadtests", "analysis"):
        (root / name).symlink_to(REPO / name)
    return root


def test_up_while_another_topology_is_up_is_a_platform_error(scratch: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    other_run = scratch / "other-run"
    other_run.mkdir()
    state = scratch / ".finchsim" / "current.json"
    state.parent.mkdir()
    recorded = json.dumps(
        {
            "pid": holder.pid,
            "started": psutil.Process(holder.pid).create_time(),
            "run_id": "20260101-000000-1",
            "run_dir": str(other_run),
            "platform": "local",
        }
    )
    state.write_text(recorded)
    try:
        done = run_cli("--project", str(scratch), *UP_STAGING)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 5, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: a topology is already up (pid {holder.pid}, run 20260101-000000-1, platform "
        "local): "
        "run `finchsim down` first"
    ], done.stderr
    assert done.stderr.splitlines()[-1] == errors[0]
    assert done.stdout == ""
    # The refusal leaves the other run alone.
    assert state.read_text() == recorded
    assert other_run.is_dir()


@dataclass
class Started:
    """A running `finchsim up` and what its run had started when it was signalled."""

    cli: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    run_id: str
    run_dir: Path
    state: Path
    processes: dict[int, float]  # pid -> create time, of every descendant of the CLI
    running: list[str]  # the pods running when it was signalled
    recorded: dict[str, Any]  # the run's last state record (for cleaning up after a failure)
    api: Clients | None = None

    def output(self) -> str:
        return f"stdout:\n{self.stdout.read_text()}\nstderr:\n{self.stderr.read_text()}"


def _wait(condition: Callable[[], object], timeout: float, what: str, proc: Started) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.cli.poll() is not None:
            pytest.fail(f"{what}: finchsim exited {proc.cli.returncode}\n{proc.output()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not after {timeout}s\n{proc.output()}")
        time.sleep(0.1)


def _read(path: Path) -> dict[str, Any]:
    """A JSON file of the run, or {} while it does not exist or is being written."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data


def _running(run: Started) -> list[str]:
    """The run's pods with a running container (owner/name), from its API server (none before it has
    recorded a kubeconfig, or while it does not answer)."""
    run.recorded = _read(run.state) or run.recorded
    kubeconfig = run.recorded.get("kubeconfig")
    if not kubeconfig:
        return []
    try:
        if run.api is None:
            run.api = Clients.connect(Path(kubeconfig), run.stdout.with_name("discovery.json"))
        pods = [pod_state(p) for p in run.api.core.list_pod_for_all_namespaces().items]
    except (PlatformError, ApiException, HTTPError):  # not answering yet, or gone already
        return []
    return [f"{p.owner}/{p.name}" for p in pods if any(c.state == "Running" for c in p.containers)]


@pytest.fixture
def up_started(scratch: Path, tmp_path: Path) -> Iterator[Started]:
    """`finchsim up` (staging) in its own session, as a shell starts a foreground job, waited
    on until PostgreSQL (as its own OS user) and Redis run; afterwards killed if still running,
    and its run cleaned up as `finchsim down` would."""
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        cli = subprocess.Popen(
            [sys.executable, "-m", "finchsim.cli", "--project", str(scratch), *UP_STAGING],
            stdout=stdout,
            stderr=stderr,
            cwd=REPO,
            start_new_session=True,
        )
    state = scratch / ".finchsim" / "current.json"
    started = Started(cli, out, err, "", Path(), state, {}, [], {})
    try:
        _wait(lambda: _read(state), 60, "the run recorded in .finchsim/current.json", started)
        run = _read(state)
        started.run_id, started.run_dir = run["run_id"], Path(run["run_dir"])
        _wait(
            lambda: (
                {"finch-postgres", "finch-redis"}
                <= {pod.split("/")[0] for pod in _running(started)}
            ),
            240,
            "PostgreSQL's and Redis's pods running",
            started,
        )
        started.running = _running(started)
        started.processes = {
            p.pid: p.create_time() for p in psutil.Process(cli.pid).children(recursive=True)
        }
        yield started
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
            cli.wait()
        if started.api is not None:
            started.api.close()
        if started.recorded:  # whatever a failing test found left behind goes too
            cleanup(Project(scratch), started.recorded)


def _left_behind(run: Started) -> list[str]:
    """Everything of the run that still exists, one line each."""
    left = []
    for pid, created in run.processes.items():
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == created and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(f"process {pid}: {' '.join(proc.cmdline())}")
        except psutil.NoSuchProcess:
            pass
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
        if str(run.run_dir) in text and proc.info["pid"] not in run.processes:
            left.append(f"process {proc.info['pid']} in the run dir: {text}")
    if run.run_dir.exists():
        left.append(f"run directory {run.run_dir}: {sorted(os.listdir(run.run_dir))}")
    if run.state.exists():
        left.append(f"state file {run.state}: {run.state.read_text()}")
    for group in CGROUP_ROOT.glob(f"*/**/finchsim/{run.run_dir.name}"):  # the kubelet's
        left.append(f"cgroup {group}")
    return left


def _stopped(run: Started, timeout: float = 120) -> int:
    try:
        return run.cli.wait(timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"finchsim up still running {timeout}s after the signal\n{run.output()}")


@pytest.mark.kwok  # the local platform's control plane
def test_ctrl_c_during_bring_up_exits_130_and_leaves_nothing(up_started: Started) -> None:
    run = up_started
    os.killpg(run.cli.pid, signal.SIGINT)  # what a terminal sends the foreground job
    code = _stopped(run)
    assert code == 130, run.output()
    assert run.stderr.read_text().splitlines()[-1] == "stopping…", run.output()
    before = f"before: {len(run.processes)} processes, pods {run.running}"
    assert not _left_behind(run), f"{before}\nafter: {_left_behind(run)}\n{run.output()}"


@pytest.mark.kwok  # the local platform's control plane
@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)], ids=["SIGTERM", "SIGHUP"]
)
def test_sigterm_or_sighup_during_bring_up_exits_128_plus_it_and_leaves_nothing(
    up_started: Started, sig: signal.Signals, code: int
) -> None:
    """SIGTERM is what `finchsim down` sends, SIGHUP what a closed terminal sends."""
    run = up_started
    os.kill(run.cli.pid, sig)
    assert _stopped(run) == code, run.output()
    assert run.stderr.read_text().splitlines()[-1] == "stopping…", run.output()
    before = f"before: {len(run.processes)} processes, pods {run.running}"
    assert not _left_behind(run), f"{before}\nafter: {_left_behind(run)}\n{run.output()}"


@pytest.mark.kwok  # the local platform's control plane
def test_more_ctrl_c_during_teardown_do_not_cut_it_short(up_started: Started) -> None:
    run = up_started
    os.killpg(run.cli.pid, signal.SIGINT)
    _wait(lambda: "stopping…" in run.stderr.read_text(), 60, "teardown started", run)
    for _ in range(2):  # an impatient user, while the processes are being stopped
        os.killpg(run.cli.pid, signal.SIGINT)
    assert _stopped(run) == 130, run.output()
    before = f"before: {len(run.processes)} processes, pods {run.running}"
    assert not _left_behind(run), f"{before}\nafter: {_left_behind(run)}\n{run.output()}"


def test_a_recorded_pid_now_held_by_another_process_is_left_alone(scratch: Path) -> None:
    """A stale record whose pid was reused: `down` must not signal the process that has it."""
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    state = scratch / ".finchsim" / "current.json"
    state.parent.mkdir()
    state.write_text(
        json.dumps(
            {
                "pid": stranger.pid,
                "started": psutil.Process(stranger.pid).create_time() - 3600,
                "run_id": "20260101-000000-1",
                "run_dir": str(scratch / "gone-run"),
                "platform": "local",
            }
        )
    )
    try:
        done = run_cli("--project", str(scratch), "down")
        assert done.returncode == 0, done.stderr
        assert stranger.poll() is None, "down signalled a process that is not the recorded one"
        assert not state.exists()
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.parametrize("content", ["{not json", '{"pid": "12"}', "[]"])
def test_a_corrupt_state_file_is_an_input_error_naming_it(scratch: Path, content: str) -> None:
    state = scratch / ".finchsim" / "current.json"
    state.parent.mkdir()
    state.write_text(content)
    for command in (("down",), UP_STAGING):
        done = run_cli("--project", str(scratch), *command)
        assert done.returncode == 2, done.stderr
        first = done.stderr.splitlines()[0]
        assert first.startswith(".finchsim/current.json: "), done.stderr
        assert "if nothing is, delete it" in first and "Traceback" not in done.stderr
    assert state.read_text() == content
