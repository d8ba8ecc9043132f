"""Running the reference workload's real processes (gunicorn, celery, manage.py) in tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finchsim.platform.local.processes import Proc, spawn
from finchsim.platform.ports import free_port
from tests.conftest import REPO

WORKLOAD = REPO / "cluster" / "workload"
BACKEND = WORKLOAD / "backend"
BIN = Path(sys.executable).parent


def base_env(**extra: str) -> dict[str, str]:
    """A clean environment for workload processes (nothing inherited but PATH/HOME/locale)."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TZ") if k in os.environ}
    env.update(
        {
            "DJANGO_SECRET_KEY": "test-secret",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    env.update(extra)
    return env


def manage(
    env: Mapping[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run `python manage.py ...` in the backend directory."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BACKEND,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class Http:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(url: str, method: str = "GET", payload: Any = None, timeout: float = 10) -> Http:
    """One HTTP request; HTTP errors are returned, not raised."""
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Http(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as exc:
        return Http(exc.code, dict(exc.headers), exc.read())


def wait_for(
    predicate: Callable[[], bool], timeout: float, what: str, proc: Proc | None = None
) -> None:
    """Poll until `predicate()` is true; fail with the process log tail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise AssertionError(f"{what}: process exited {proc.returncode}\n{proc.tail(40)}")
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.1)
    tail = proc.tail(40) if proc is not None else ""
    raise AssertionError(f"{what}: not true after {timeout}s\n{tail}")


class Backend:
    """gunicorn serving finchapp on a free port; `stop()` ends the whole process group."""

    def __init__(self, env: Mapping[str, str], run_dir: Path, workers: int = 2) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(env) | {
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": str(workers),
            "PROMETHEUS_MULTIPROC_DIR": str(run_dir / f"prom-web-{self.port}"),
        }
        self.log = run_dir / f"gunicorn-{self.port}.log"
        self.proc: Proc | None = None

    def start(self) -> Backend:
        self.proc = spawn(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"],
            env=self.env,
            cwd=BACKEND,
            log_path=self.log,
        )
        wait_for(
            lambda: http(f"{self.url}/healthz/live", timeout=2).status == 200,
            30,
            "gunicorn /healthz/live",
            self.proc,
        )
        return self

    def get(self, path: str) -> Http:
        return http(self.url + path)

    def post(self, path: str, payload: Any) -> Http:
        return http(self.url + path, "POST", payload)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate(20)


class Worker:
    """`celery -A finchapp worker` (and optionally beat) with metrics on a free port."""

    def __init__(self, env: Mapping[str, str], run_dir: Path, *, beat: bool = False) -> None:
        self.metrics_port = free_port()
        self.env = dict(env) | {
            "CELERY_CONCURRENCY": "2",
            "FINCH_WORKER_METRICS_PORT": str(self.metrics_port),
            "PROMETHEUS_MULTIPROC_DIR": str(run_dir / f"prom-worker-{self.metrics_port}"),
            "CELERY_BEAT_SCHEDULE_DIR": str(run_dir),
        }
        self.run_dir, self.beat = run_dir, beat
        self.procs: list[Proc] = []

    def start(self) -> Worker:
        celery = str(BIN / "celery")
        worker = spawn(
            [celery, "-A", "finchapp", "worker", "-l", "info"],
            env=self.env,
            cwd=BACKEND,
            log_path=self.run_dir / "worker.log",
        )
        self.procs.append(worker)
        if self.beat:
            self.procs.append(
                spawn(
                    [celery, "-A", "finchapp", "beat", "-l", "info"],
                    env=self.env,
                    cwd=BACKEND,
                    log_path=self.run_dir / "beat.log",
                )
            )
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        wait_for(lambda: http(url, timeout=2).status == 200, 60, "celery worker metrics", worker)
        return self

    def metrics(self) -> str:
        return http(f"http://127.0.0.1:{self.metrics_port}/metrics").body.decode()

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate(20)
