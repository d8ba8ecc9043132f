"""Launching Locust on a load profile, as a subprocess in its own process group.

Locust (gevent) never runs inside finchsim: it monkey-patches the process it is imported in.
`LocustRun` is an observer with the shared lifecycle `start()` / `wait()` / `stop()` /
`collect()`. Every run is bounded three ways: the profile's shape ends at `maxDuration`, the
locustfile stops the runner after `maxRequests`, and `wait()` stops the process at a wall-clock
deadline in case neither happened."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit

import psutil

from finchsim.deathsig import die_with_parent
from finchsim.errors import InputError, PlatformError, Problem
from finchsim.load.profile import load_profile
from finchsim.load.results import LoadResult, read_result
from finchsim.platform.tools import find_tool
from finchsim.project import Project

LOCUSTFILE = "finch_locustfile.py"
# Slack on top of the profile's maxDuration before the wall-clock deadline stops the run:
# Locust's start-up (~1-2 s), the users' stop timeout and writing its reports.
DEADLINE_SLACK_S = 20.0


class LocustRun:
    """One headless Locust process driving `profile_path` against `base_url`.

    Files in `run_dir`: `load-profile.json` (the resolved profile the locustfile reads),
    `locust.log`, `locust.json`, `locust_stats*.csv`, `locust_failures.csv`,
    `locust-summary.json` (from the locustfile) and `load-result.json` (from `collect()`)."""

    def __init__(
        self,
        profile_path: Path,
        base_url: str,
        run_dir: Path,
        *,
        project: Project | None = None,
        startup_timeout: float = 30.0,
        stop_grace: float = 15.0,
    ) -> None:
        self.project = project or Project.locate()
        check_loopback(base_url)
        self.base_url = base_url.rstrip("/")
        self.profile_path = profile_path
        self.profile = load_profile(profile_path, self.project.rel(profile_path))
        self.run_dir = run_dir
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self.prefix = run_dir / "locust"
        self.log_path = run_dir / "locust.log"
        self.summary_path = run_dir / "locust-summary.json"
        self.cpu_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self._killed = False

    @property
    def argv(self) -> list[str]:
        """The Locust command line (without the environment that names the profile)."""
        return [
            find_tool("locust"), "-f", str(self.project.loadtests / LOCUSTFILE),
            "--headless", "--host", self.base_url, "--only-summary", "--loglevel", "INFO",
            "--json-file", str(self.prefix), "--csv", str(self.prefix), "--csv-full-history",
            # Failed requests are data here (rate limiting is expected), not a failed run.
            "--exit-code-on-error", "0",
            # Users finish the request they are in when the shape ends, so Locust's totals
            # equal what the server received.
            # Locust's timespan takes whole seconds only.
            "--stop-timeout", str(math.ceil(self.profile.request_timeout_seconds) + 1),
        ]  # fmt: skip

    @property
    def deadline_s(self) -> float:
        """Seconds after start() at which wait() stops a Locust that did not end by itself."""
        return self.profile.max_duration_seconds + DEADLINE_SLACK_S

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start Locust and return once it has loaded the locustfile and begun the test.

        Raises PlatformError with the end of Locust's log if it exits or hangs at start-up."""
        if self._proc is not None:
            raise PlatformError("this LocustRun was already started")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        profile_json = self.run_dir / "load-profile.json"
        profile_json.write_text(json.dumps(self.profile.runtime(self.profile_path.stem), indent=2))
        env = {
            **os.environ,
            "FINCHSIM_LOAD_PROFILE": str(profile_json),
            "FINCHSIM_LOAD_SUMMARY": str(self.summary_path),
            "PYTHONUNBUFFERED": "1",
        }
        with self.log_path.open("wb") as log:
            # Its own group (stopped as one), and dead with us even after SIGKILL: nothing else
            # would stop it, and `finchsim down` knows only the platform's processes.
            parent = os.getpid()
            self._proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.project.root, env=env, start_new_session=True,
                preexec_fn=lambda: die_with_parent(parent),
            )  # fmt: skip
        self._started = time.monotonic()
        # Locust opens its CSV files after importing the locustfile and building the runner.
        ready = Path(f"{self.prefix}_stats.csv")
        while not ready.exists():
            if self._proc.poll() is not None:
                raise self._failure(f"locust exited at start-up (exit {self._proc.returncode})")
            if time.monotonic() - self._started > self.startup_timeout:
                self.stop()
                raise self._failure(f"locust did not start within {self.startup_timeout:g}s")
            time.sleep(0.05)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to `timeout` seconds (default: until the deadline) for Locust to end by
        itself; True if it has. Past the deadline it is stopped, and False returned."""
        proc = self._require_started()
        until = self._started + self.deadline_s
        if timeout is not None:
            until = min(until, time.monotonic() + timeout)
        while proc.poll() is None and time.monotonic() < until:
            self._sample_cpu(proc.pid)
            time.sleep(0.25)
        if proc.poll() is not None:
            return True
        if time.monotonic() >= self._started + self.deadline_s:
            self.stop()
        return False

    def stop(self) -> None:
        """End Locust now: SIGTERM (it stops its users and writes its reports), then SIGKILL
        after the grace. Not SIGINT: with a load shape, Ctrl+C can land in the shape's
        greenlet, which Locust reports as a crash (exit 2)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        self._sample_cpu(proc.pid)
        self._signal(proc, signal.SIGTERM)
        try:
            proc.wait(self.stop_grace)
        except subprocess.TimeoutExpired:
            self._killed = True
            self._signal(proc, signal.SIGKILL)
            proc.wait(10)

    def collect(self) -> LoadResult:
        """Stop Locust if still running, then read what it measured (also written to
        `load-result.json`). Raises PlatformError if Locust ended abnormally."""
        proc = self._require_started()
        self.stop()
        if self._killed:
            raise self._failure(f"locust ignored SIGTERM for {self.stop_grace:g}s and was killed")
        if proc.returncode != 0:
            raise self._failure(f"locust exited with status {proc.returncode}")
        if not self.prefix.with_suffix(".json").is_file():
            raise self._failure("locust exited without writing its JSON statistics")
        result = read_result(self.prefix, self.summary_path, proc.returncode)
        data = {**result.to_dict(), "locust_cpu_seconds": round(self.cpu_seconds, 2)}
        (self.run_dir / "load-result.json").write_text(json.dumps(data, indent=2))
        return result

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of Locust's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> LocustRun:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _require_started(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise PlatformError("LocustRun.start() was not called")
        return self._proc

    def _failure(self, what: str) -> PlatformError:
        return PlatformError(f"{what}; last lines of {self.log_path}:\n{self.log_tail()}")

    def _sample_cpu(self, pid: int) -> None:
        # Locust's own CPU use (user + system), for judging load-generator overhead.
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            return
        self.cpu_seconds = times.user + times.system

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)  # its own group: any child it forked goes too


def check_loopback(base_url: str) -> None:
    """Raise InputError unless `base_url` is http(s) on `localhost` or a loopback address:
    load is only ever sent to this machine."""
    parts = urlsplit(base_url)
    problem = ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problem = "expected http://HOST:PORT or https://HOST:PORT"
    elif parts.path.strip("/") or parts.query:
        problem = "expected no path: the Host header, not the URL, selects the virtual host"
    elif parts.hostname != "localhost":
        try:
            loopback = ipaddress.ip_address(parts.hostname).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            problem = "refusing a non-loopback host: load goes to 127.0.0.0/8, ::1 or localhost"
    if problem:
        raise InputError([Problem("base URL", base_url, problem)])
