"""Real process trees: group kill, PDEATHSIG, CPU/memory sampling, crash clean-up, log tail."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from finchsim.platform.local.processes import REGISTRY_FILE, Proc, ProcessRegistry, spawn
from finchsim.platform.ports import free_port

pytestmark = pytest.mark.integration


def gone(pid: int) -> bool:
    """Dead or a zombie (pid 1 here may never reap orphans)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def hard_kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def spawner(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """`spawn` with a python script; kills every tree it started, even when the test failed."""
    procs: list[Proc] = []

    def start(script: str, name: str = "child") -> Proc:
        argv = [sys.executable, "-c", textwrap.dedent(script)]
        proc = spawn(argv, env=dict(os.environ), cwd=tmp_path, log_path=tmp_path / f"{name}.log")
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        pids = proc.tree_pids()
        proc.kill()
        hard_kill(pids)


def log_has(proc: Proc, text: str) -> Callable[[], bool]:
    return lambda: text in proc.tail(200)


def test_group_kill_kills_grandchildren(spawner: Callable[..., Proc]) -> None:
    proc = spawner("""
        import subprocess, time
        a = subprocess.Popen(["sleep", "60"])
        # a grandchild that itself forks: two levels below the leader
        b = subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60; wait"])
        print("ready", flush=True)
        time.sleep(60)
    """)
    assert wait_for(lambda: len(proc.tree_pids()) >= 5), proc.tree_pids()
    pids = proc.tree_pids()
    assert all(os.getpgid(p) == proc.pgid for p in pids)
    proc.kill()
    assert wait_for(lambda: all(gone(p) for p in pids), 3), [p for p in pids if not gone(p)]
    assert proc.returncode == -signal.SIGKILL
    assert not proc.alive()
    proc.kill()  # already gone: must not raise
    proc.terminate(0.1)


def test_terminate_lets_the_group_exit_on_sigterm(spawner: Callable[..., Proc]) -> None:
    proc = spawner("""
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: (print("bye", flush=True), sys.exit(0)))
        print("ready", flush=True)
        time.sleep(60)
    """)
    assert wait_for(log_has(proc, "ready"))
    t0 = time.monotonic()
    proc.terminate(grace_s=5)
    assert time.monotonic() - t0 < 2, "a clean SIGTERM exit must not wait for the grace period"
    assert proc.returncode == 0
    assert proc.tail(1) == "bye"


@pytest.mark.parametrize("leader_only", [False, True])
def test_terminate_escalates_to_sigkill(spawner: Callable[..., Proc], leader_only: bool) -> None:
    # The leader and its child both ignore SIGTERM (and log it): only SIGKILL ends them.
    proc = spawner("""
        import os, signal, sys, time
        def noted(who):
            return lambda *_: print(f"{who} got TERM", flush=True)
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, noted("child"))
            print("child ready", flush=True)
            while True:
                time.sleep(1)
        signal.signal(signal.SIGTERM, noted("leader"))
        print("leader ready", flush=True)
        while True:
            time.sleep(1)
    """)
    assert wait_for(lambda: "child ready" in proc.tail() and "leader ready" in proc.tail())
    pids = proc.tree_pids()
    t0 = time.monotonic()
    proc.terminate(grace_s=0.5, leader_only=leader_only)
    assert 0.5 <= time.monotonic() - t0 < 3
    assert proc.returncode == -signal.SIGKILL
    assert wait_for(lambda: all(gone(p) for p in pids), 3)
    assert "leader got TERM" in proc.tail()
    assert ("child got TERM" in proc.tail()) is not leader_only, proc.tail()


def test_pdeathsig_kills_child_when_parent_is_sigkilled(tmp_path: Path) -> None:
    intermediate = textwrap.dedent(f"""
        import os, sys, time
        from pathlib import Path
        from finchsim.platform.local.processes import spawn
        p = spawn(["sleep", "60"], env=dict(os.environ), cwd={str(tmp_path)!r},
                  log_path=Path({str(tmp_path / "sleep.log")!r}))
        print(p.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen(
        [sys.executable, "-c", intermediate], stdout=subprocess.PIPE, text=True
    )
    child = -1
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        # the child has its own session: only PDEATHSIG can take it down with its parent
        assert os.getsid(child) == child != os.getsid(parent.pid)
        assert not gone(child)
        parent.kill()
        parent.wait()
        assert wait_for(lambda: gone(child), 3), "child survived its parent's SIGKILL"
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
        if child > 0:
            hard_kill([child])


def test_nginx_workers_go_with_a_master_told_by_sigterm(tmp_path: Path) -> None:
    """PDEATHSIG reaches only the master; with SIGKILL its workers would keep the port. With
    `death_signal=SIGTERM` the master stops them (nginx's fast shutdown) before it exits."""
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"worker_processes 2; daemon off; pid {tmp_path}/nginx.pid; error_log stderr;\n"
        f"events {{}} http {{ access_log off; server {{ listen 127.0.0.1:{free_port()}; }} }}\n"
    )
    intermediate = textwrap.dedent(f"""
        import os, signal, time
        from pathlib import Path
        from finchsim.platform.local.processes import spawn
        p = spawn(["nginx", "-c", {str(conf)!r}, "-p", {str(tmp_path)!r}],
                  env={{"PATH": "/usr/sbin:/usr/bin"}}, cwd={str(tmp_path)!r},
                  log_path=Path({str(tmp_path / "nginx.log")!r}), death_signal=signal.SIGTERM)
        print(p.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen(
        [sys.executable, "-c", intermediate], stdout=subprocess.PIPE, text=True
    )
    group: list[int] = []
    try:
        assert parent.stdout is not None
        master = int(parent.stdout.readline())

        def nginx_group() -> list[int]:
            return [p.pid for p in psutil.process_iter() if _sid(p.pid) == master]

        assert wait_for(lambda: len(nginx_group()) == 3), nginx_group()  # master + 2 workers
        group = nginx_group()
        parent.kill()
        parent.wait()
        assert wait_for(lambda: all(gone(pid) for pid in group), 10), [
            pid for pid in group if not gone(pid)
        ]
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
        hard_kill(group)


def _sid(pid: int) -> int:
    try:
        return os.getsid(pid)
    except ProcessLookupError:
        return -1


def test_cpu_sample_follows_busy_time_of_the_tree(spawner: Callable[..., Proc]) -> None:
    # The leader burns 1.0 CPU-s and a reaped grandchild 0.5 CPU-s (counted via children_*).
    proc = spawner("""
        import os, time
        def burn(seconds):
            end = time.process_time() + seconds
            while time.process_time() < end:
                pass
        time.sleep(0.3)
        pid = os.fork()
        if pid == 0:
            burn(0.5)
            os._exit(0)
        burn(1.0)
        os.waitpid(pid, 0)
        print("done", flush=True)
        time.sleep(60)
    """)
    before = proc.sample()
    assert wait_for(log_has(proc, "done"), 15)
    after = proc.sample()
    used = after.cpu_seconds - before.cpu_seconds
    assert 1.5 * 0.7 <= used <= 1.5 * 1.3, (before, after)


def test_memory_sample_sees_100_mb(spawner: Callable[..., Proc]) -> None:
    proc = spawner("""
        import time
        print("small", flush=True)
        time.sleep(0.5)
        block = b"\\x01" * (100 << 20)  # non-zero bytes: every page is really resident
        print("big", flush=True)
        time.sleep(60)
    """)
    assert wait_for(log_has(proc, "small"))
    small = proc.sample()
    assert wait_for(log_has(proc, "big"))
    big = proc.sample()
    mb = 1 << 20
    assert big.rss_bytes - small.rss_bytes >= 95 * mb, (small, big)
    assert big.working_set_bytes - small.working_set_bytes >= 95 * mb, (small, big)
    assert big.working_set_bytes <= big.rss_bytes
    assert big.processes == 1


def test_kill_all_recorded_after_crash_and_pid_reuse_guard(
    spawner: Callable[..., Proc], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    registry = ProcessRegistry(run_dir)
    leftover = spawner(
        "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)", "leftover"
    )
    stopped = spawner("import time; time.sleep(60)", "stopped")
    stranger = spawner("import time; time.sleep(60)", "stranger")
    for proc in (leftover, stopped, stranger):
        registry.register(proc, label="web")
    stopped.kill()
    registry.unregister(stopped)
    assert wait_for(lambda: len(leftover.tree_pids()) == 2)
    victims = leftover.tree_pids()
    # A record whose pid now belongs to another process: simulate it by faking the start time.
    records = json.loads((run_dir / REGISTRY_FILE).read_text())
    records[str(stranger.pgid)]["start_ticks"] -= 1
    (run_dir / REGISTRY_FILE).write_text(json.dumps(records))
    assert set(records) == {str(leftover.pgid), str(stranger.pgid)}

    # `finchsim down` runs in another process after the harness crashed.
    code = (
        "import sys; from pathlib import Path; from finchsim.platform.local.processes "
        "import ProcessRegistry as R; print(R.kill_all_recorded(Path(sys.argv[1])))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(run_dir)], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == f"[{leftover.pgid}]"
    assert wait_for(lambda: all(gone(p) for p in victims), 3)
    assert stranger.alive(), "a pid with another start time must be left alone"
    assert not (run_dir / REGISTRY_FILE).exists()


def test_tail_returns_last_lines(spawner: Callable[..., Proc]) -> None:
    proc = spawner("""
        import sys
        for i in range(5000):
            print(f"line {i}")
        print("to stderr", file=sys.stderr)
    """)
    assert wait_for(lambda: proc.returncode is not None)
    assert proc.tail(3) == "line 4998\nline 4999\nto stderr"
    assert proc.tail(0) == ""
    assert len(proc.tail(6000).splitlines()) == 5001


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
def test_user_switch_keeps_pdeathsig(tmp_path: Path) -> None:
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres OS user")
    # PR_GET_PDEATHSIG = 2: prctl(2) says a uid change clears the setting; it must survive ours.
    script = (
        "import ctypes, json, os; v = ctypes.c_int(); "
        "ctypes.CDLL(None).prctl(2, ctypes.byref(v), 0, 0, 0); "
        "print(json.dumps([os.getuid(), os.getgid(), os.getgroups(), v.value]))"
    )
    proc = spawn(
        ["/usr/bin/python3", "-c", script],
        env={"PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        log_path=tmp_path / "pg.log",
        user="postgres",
    )
    try:
        assert wait_for(lambda: proc.returncode is not None)
        assert proc.returncode == 0, proc.tail(20)
        uid, gid, groups, pdeathsig = json.loads(proc.tail(1))
        assert (uid, gid) == (entry.pw_uid, entry.pw_gid)
        assert groups == [], "root's supplementary groups must be dropped"
        assert pdeathsig == signal.SIGKILL
    finally:
        proc.kill()
