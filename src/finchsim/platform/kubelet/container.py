"""One container as the kubelet runs it: its process, its restarts with the crash-loop back-off,
its probes' verdicts and its status as the API shows it.

Back-off as pkg/kubelet/kuberuntime (backOff 10 s doubling to 300 s, reset after 10 min of
running): the first restart is at once, then 10 s, 20 s, ... An image without a local runtime
waits in ErrImagePull, then ImagePullBackOff on the same schedule."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from typing import Any

from finchsim.platform.local.cgroups import ContainerCgroup
from finchsim.platform.local.processes import Proc
from finchsim.platform.local.runtimes import Launch
from finchsim.platform.podspec import Container

BACKOFF_START = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET_AFTER = 600.0


def rfc3339(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))


@dataclass
class Probing:
    successes: int = 0
    failures: int = 0
    last_run: float = 0.0
    passed: bool = False


@dataclass
class Terminated:
    exit_code: int
    reason: str
    started: float
    finished: float
    signal: int | None = None

    def status(self, container_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "startedAt": rfc3339(self.started),
            "finishedAt": rfc3339(self.finished),
            "containerID": container_id,
        }
        if self.signal is not None:
            out["signal"] = self.signal
        return out


@dataclass
class ContainerRun:
    spec: Container
    image: str
    init: bool = False
    proc: Proc | None = None
    cgroup: ContainerCgroup | None = None
    restarts: int = 0
    started_wall: float = 0.0
    started_mono: float = 0.0
    next_start: float = 0.0
    backoff: float = 0.0
    waited: float = 0.0  # the back-off being waited out now
    waiting: tuple[str, str] = ("ContainerCreating", "")
    last: Terminated | None = None
    current_exit: Terminated | None = None  # exited for good (Job pods, init done, deletion)
    container_id: str = ""
    oom_seen: int = 0
    # How it was started (environment, working directory, user), for `kubectl exec`.
    launch: Launch | None = None
    ids: tuple[int, ...] | None = None
    startup: Probing = field(default_factory=Probing)
    liveness: Probing = field(default_factory=Probing)
    readiness: Probing = field(default_factory=Probing)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.alive()

    @property
    def done(self) -> bool:
        return self.current_exit is not None

    @property
    def succeeded(self) -> bool:
        return self.current_exit is not None and self.current_exit.exit_code == 0

    @property
    def started(self) -> bool:
        """The startup probe has passed (or there is none) while running."""
        return self.running and (self.spec.startup is None or self.startup.passed)

    @property
    def ready(self) -> bool:
        if not self.started:
            return False
        return self.spec.readiness is None or self.readiness.passed

    def reset_probes(self) -> None:
        self.startup, self.liveness, self.readiness = Probing(), Probing(), Probing()

    def reap(self, now: float) -> Terminated | None:
        """If the process exited: its termination (OOMKilled when the cgroup counted a kill)."""
        if self.proc is None or self.proc.alive():
            return None
        code = self.proc.returncode
        assert code is not None
        sig = -code if code < 0 else None
        exit_code = 128 + sig if sig is not None else code
        reason = "Completed" if exit_code == 0 else "Error"
        if self.cgroup is not None:
            try:
                kills = self.cgroup.stats().oom_kills or 0
            except (OSError, ValueError):
                kills = self.oom_seen
            if kills > self.oom_seen and sig == signal.SIGKILL:
                reason = "OOMKilled"
            self.oom_seen = kills
        self.proc = None
        return Terminated(exit_code, reason, self.started_wall, time.time(), sig)

    def schedule_restart(self, now: float) -> None:
        """After a crash: the first restart at once, then the doubling back-off."""
        if now - self.started_mono > BACKOFF_RESET_AFTER:
            self.backoff = 0.0
        self.next_start = now + self.backoff
        self.waited = self.backoff
        self.backoff = BACKOFF_START if self.backoff == 0 else min(self.backoff * 2, BACKOFF_MAX)

    def status(self, pod: str, namespace: str, uid: str, now: float) -> dict[str, Any]:
        """This container's entry in containerStatuses / initContainerStatuses."""
        state: dict[str, Any]
        if self.running:
            state = {"running": {"startedAt": rfc3339(self.started_wall)}}
        elif self.current_exit is not None:
            state = {"terminated": self.current_exit.status(self.container_id)}
        else:
            reason, message = self.waiting
            if reason == "CrashLoopBackOff":
                left = max(0.0, self.next_start - now)
                message = (
                    f"back-off {self.waited:g}s restarting failed "
                    f"container={self.spec.name} pod={pod}_{namespace}({uid})"
                )
                if left <= 0:
                    reason, message = "ContainerCreating", ""
            state = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
        out: dict[str, Any] = {
            "name": self.spec.name,
            "image": self.image,
            "imageID": f"finchsim://{self.image}" if self.container_id else "",
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restarts,
            "state": state,
            "lastState": ({"terminated": self.last.status(self.container_id)} if self.last else {}),
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out
