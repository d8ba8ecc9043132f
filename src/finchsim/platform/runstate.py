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

from finchsim.errors import InputError, PlatformError, Problem
from finchsim.project import Project

STATE_DIR = ".finchsim"
STATE_FILE = "current.json"


def state_path(project: Project) -> Path:
    return project.root / STATE_DIR / STATE_FILE


def read_state(project: Project) -> dict[str, Any] | None:
    """The recorded run, or None when nothing is recorded. A file that is not a run record is
    an input error naming it: guessing which processes it meant could stop someone else's."""
    path = state_path(project)
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _corrupt(project, "", f"is not JSON ({exc})") from exc
    if not isinstance(state, dict):
        raise _corrupt(project, "", "must be a JSON object")
    for key, kind in (("pid", int), ("run_id", str), ("run_dir", str), ("platform", str)):
        if not isinstance(state.get(key), kind):
            raise _corrupt(project, key, f"expected a {kind.__name__}, got {state.get(key)!r}")
    return state


def _corrupt(project: Project, field: str, message: str) -> InputError:
    return InputError(
        [
            Problem(
                project.rel(state_path(project)),
                field,
                f"{message}; it is finch-sim's record of what is up — if nothing is, delete it",
            )
        ]
    )


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
            "started": psutil.Process().create_time(),
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
    """Whether the recorded process still runs — the same process, proven by its start time,
    not whatever process has since been given that pid."""
    pid = int(state.get("pid", 0))
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        started = proc.create_time()
    except psutil.NoSuchProcess:
        return False
    recorded = state.get("started")
    return isinstance(recorded, (int, float)) and abs(started - recorded) < 1.0


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
