"""Supervised infrastructure processes: restarted with back-off, told, given up on when they
keep dying. Real processes (`sh` printing a line and exiting); time is passed in explicitly."""

from __future__ import annotations

from pathlib import Path

import pytest

from finchsim.errors import PlatformError
from finchsim.platform.local import supervisor
from finchsim.platform.local.processes import Proc, spawn
from finchsim.platform.local.supervisor import Supervised

pytestmark = pytest.mark.integration


def test_a_dying_process_is_restarted_with_back_off_then_given_up_on(tmp_path: Path) -> None:
    started: list[Proc] = []

    def start() -> Proc:
        proc = spawn(
            ["sh", "-c", f"echo 'attempt {len(started)} failed'; exit 3"],
            env={"PATH": "/usr/bin:/bin"},
            cwd=tmp_path,
            log_path=tmp_path / f"out-{len(started)}.log",
        )
        started.append(proc)
        return proc

    told: list[str] = []
    sup = Supervised("exporter", start, told.append)
    now = 1000.0
    for restart in range(supervisor.MAX_RESTARTS):
        sup.proc.popen.wait(30)
        delay = 0.0 if restart == 0 else supervisor.BACKOFF_FIRST_S * 2 ** (restart - 1)
        if delay:
            sup.check(now)  # found dead: not restarted before its back-off has passed
            assert len(started) == restart + 1
            now += delay
        sup.check(now)
        assert len(started) == restart + 2, f"restart {restart + 1} not made at +{delay}s"
        assert told[-1] == (
            f"exporter exited (status 3: attempt {restart} failed); restarted "
            f"({restart + 1} in the last 300 s)"
        )
    sup.proc.popen.wait(30)
    with pytest.raises(PlatformError, match=r"exporter keeps exiting \(5 restarts in 300 s"):
        sup.check(now)


def test_a_running_process_is_left_alone_and_stopped_on_request(tmp_path: Path) -> None:
    sup = Supervised(
        "sleeper",
        lambda: spawn(
            ["sleep", "300"], env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path, log_path=tmp_path / "l"
        ),
        lambda line: pytest.fail(f"told {line!r} about a process that runs"),
    )
    first = sup.proc
    sup.check()
    assert sup.proc is first and first.alive()
    sup.stop()
    assert not first.alive()
