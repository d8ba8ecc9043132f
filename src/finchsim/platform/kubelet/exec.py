"""`kubectl exec` and a killed container, on the kubelet's own pods.

`exec_in` runs a command as the container would: with the environment, working directory and
user its process was started with (a command of the image that is one of the harness's own
programs — `python`, `celery` — is the virtualenv's, as the container's is). `kill_container`
SIGKILLs a container's processes; the kubelet's sync then sees it exit and restarts it with
its back-off, as after a crash."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from finchsim.errors import CommandError, PlatformError
from finchsim.platform.kubelet.container import ContainerRun
from finchsim.platform.kubelet.pod import PodWorker


def _container(worker: PodWorker, name: str | None) -> ContainerRun:
    runs = worker.containers
    run = runs[0] if name is None else next((r for r in runs if r.spec.name == name), None)
    ns, pod = worker.key
    if run is None:
        known = ", ".join(r.spec.name for r in runs)
        raise PlatformError(f"pod {ns}/{pod} has no container {name!r}; it has: {known}")
    if not run.running or run.launch is None:
        raise PlatformError(f"container {run.spec.name} of pod {ns}/{pod} is not running")
    return run


def exec_in(
    worker: PodWorker, argv: Sequence[str], timeout: float, container: str | None = None
) -> str:
    run = _container(worker, container)
    assert run.launch is not None
    tool = Path(sys.executable).parent / argv[0]
    command = [str(tool) if tool.exists() else argv[0], *argv[1:]]
    ids = run.ids
    try:
        done = subprocess.run(
            command,
            env=run.launch.env,
            cwd=run.launch.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            user=ids[0] if ids else None,
            group=ids[1] if ids else None,
            extra_groups=list(ids[2:]) if ids and len(ids) > 2 else None,
        )
    except subprocess.TimeoutExpired as exc:
        raise PlatformError(f"exec {' '.join(argv)}: still running after {timeout:.0f}s") from exc
    if done.returncode != 0:
        raise CommandError(command, done.returncode, done.stdout + done.stderr)
    return done.stdout


def kill_container(worker: PodWorker, container: str) -> None:
    run = _container(worker, container)
    assert run.proc is not None
    run.proc.kill()
