"""The one record of what is up: `<project>/.finchsim/current.json`.

`up` writes it before it starts anything (and again once it knows more: ports, the cluster's
kubeconfig), a second `up` while the recorded process lives is refused, and `finchsim down` —
from any shell — reads it to stop that process and clean up after it, also after a crash."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import psutil

from finchsim.errors import PlatformError
from finchsim.project import Project

STATE_DIR = ".finchsim"
STATE_FILE = "current.json"


def state_path(project: Project) -> Path:
    return project.root / STATE_DIR / STATE_FILE


def read_state(project: Project) -> dict[str, Any] | None:
    """The recorded run, or None when nothing is recorded (or the record is unreadable)."""
    try:
        state: dict[str, Any] = json.loads(state_path(project).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return state


def write_state(project: Project, state: dict[str, Any]) -> None:
    path = state_path(project)
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    tmp.replace(path)


def record_run(
    project: Project, run_id: str, run_dir: Path, platform: str, overlay: str, **extra: Any
) -> None:
    """Record the run this process holds: what every platform records, plus its `extra`."""
    write_state(
        project,
        {
            "pid": os.getpid(),
            "run_id": run_id,
            "run_dir": str(run_dir),
            "platform": platform,
            "overlay": overlay,
            **extra,
        },
    )


def clear_state(project: Project, run_id: str) -> None:
    """Forget the record, if it is still the one of `run_id`."""
    state = read_state(project)
    if state is not None and state.get("run_id") == run_id:
        with contextlib.suppress(FileNotFoundError):
            state_path(project).unlink()


def holder_alive(state: dict[str, Any]) -> bool:
    pid = int(state.get("pid", 0))
    return pid > 0 and pid != os.getpid() and psutil.pid_exists(pid)


def refuse_if_running(project: Project) -> dict[str, Any] | None:
    """Raise PlatformError when another `up` holds the project; return the record a crashed run
    left (for its platform to clean up), or None."""
    state = read_state(project)
    if state is None:
        return None
    if holder_alive(state):
        raise PlatformError(
            f"a topology is already up (pid {state['pid']}, run {state['run_id']}, platform "
            f"{state.get('platform', 'local')}): run `finchsim down` first"
        )
    return state


def stop_holder(state: dict[str, Any], timeout: float = 60.0) -> None:
    """SIGTERM the process holding a run (it tears down itself) and wait for it to exit."""
    if not holder_alive(state):
        return
    pid = int(state["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
        psutil.Process(pid).wait(timeout)
