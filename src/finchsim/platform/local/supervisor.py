"""Infrastructure the platform itself runs (the ingress, Prometheus, Alertmanager, exporters):
kept running as a process supervisor would, not fatal when one process dies.

A process that exits is restarted — the first time at once, then after 1 s doubling to 30 s —
and each restart is told to the platform's log as an event with the exit status and the last
line it printed. Only a process that keeps dying (more than `MAX_RESTARTS` within
`RESTART_WINDOW_S`) takes the run down, with its output as the reason. Before a restart the
whole process group is killed: an nginx master killed with SIGKILL leaves its workers holding
the listening sockets, and the new master could not bind them."""

from __future__ import annotations

import time
from collections.abc import Callable

from finchsim.errors import PlatformError
from finchsim.platform.local.processes import Proc

BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
MAX_RESTARTS = 5
RESTART_WINDOW_S = 300.0


class Supervised:
    """One supervised process; `check()` (from the platform's loop) restarts it when it died."""

    def __init__(
        self,
        name: str,
        start: Callable[[], Proc],
        log: Callable[[str], None],
        register: Callable[[Proc, str], None] = lambda _proc, _label: None,
    ) -> None:
        self.name = name
        self._start = start
        self.log = log
        self.register = register
        self.proc = self._launch()
        self.restarts: list[float] = []  # monotonic times of the restarts
        self.next_start = 0.0

    def _launch(self) -> Proc:
        proc = self._start()
        self.register(proc, self.name)
        return proc

    def alive(self) -> bool:
        return self.proc.alive()

    def check(self, now: float | None = None) -> None:
        """Restart the process if it has exited and its back-off has passed; raise
        PlatformError when it keeps dying."""
        if self.proc.alive():
            return
        now = time.monotonic() if now is None else now
        if self.next_start == 0.0:  # just found dead: decide when it comes back
            self.proc.kill()  # what is left of its group (workers holding its ports)
            self.restarts = [t for t in self.restarts if now - t < RESTART_WINDOW_S]
            if len(self.restarts) >= MAX_RESTARTS:
                raise PlatformError(
                    f"{self.name} keeps exiting ({len(self.restarts)} restarts in "
                    f"{RESTART_WINDOW_S:.0f} s; exit status {self.proc.returncode}): "
                    f"{self.proc.tail(10).strip() or '(no output)'}"
                )
            delay = 0.0 if not self.restarts else BACKOFF_FIRST_S * 2 ** (len(self.restarts) - 1)
            self.next_start = now + min(delay, BACKOFF_MAX_S)
        if now < self.next_start:
            return
        died = self.proc
        last = (died.tail(1).strip().splitlines() or ["(no output)"])[-1]
        self.proc = self._launch()
        self.restarts.append(now)
        self.next_start = 0.0
        self.log(
            f"{self.name} exited (status {died.returncode}: {last}); "
            f"restarted ({len(self.restarts)} in the last {RESTART_WINDOW_S:.0f} s)"
        )

    def stop(self, grace_s: float = 5.0) -> None:
        self.proc.terminate(grace_s)
