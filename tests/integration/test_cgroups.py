"""Real cgroups: CPU throttling at 200m, OOM kill at 64Mi, destroy and run clean-up."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from finchsim.platform.local.cgroups import (
    CgroupStats,
    CgroupSupport,
    ContainerCgroup,
    cleanup_run,
    detect,
)
from finchsim.platform.local.processes import Proc, spawn

pytestmark = pytest.mark.integration
MI = 1 << 20


@pytest.fixture(scope="module")
def support() -> CgroupSupport:
    found = detect()
    if not found.usable:
        pytest.skip(found.reason)
    return found


@pytest.fixture
def run_id(support: CgroupSupport) -> Iterator[str]:
    """A fresh run whose whole cgroup tree (and every process in it) is removed afterwards."""
    rid = f"test-{uuid.uuid4().hex[:8]}"
    yield rid
    cleanup_run(rid, support)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[str, ContainerCgroup], Proc]]:
    procs: list[Proc] = []

    def run(script: str, group: ContainerCgroup) -> Proc:
        proc = spawn(
            [sys.executable, "-c", textwrap.dedent(script)],
            env=dict(os.environ),
            cwd=tmp_path,
            log_path=tmp_path / f"p{len(procs)}.log",
            cgroup_procs=group.procs_files,
        )
        procs.append(proc)
        return proc

    yield run
    for proc in procs:
        proc.kill()


def wait_exit(proc: Proc, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while proc.returncode is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc.returncode


def group_dirs(support: CgroupSupport, rid: str) -> list[Path]:
    return [
        base / "finchsim" / rid
        for base in support.bases.values()
        if (base / "finchsim" / rid).exists()
    ]


def test_cpu_limit_200m_is_throttled(
    support: CgroupSupport, run_id: str, start: Callable[[str, ContainerCgroup], Proc]
) -> None:
    group = ContainerCgroup.create(run_id, "web-0", "gunicorn", 200, 0, support)
    before = group.stats()
    t0 = time.monotonic()
    proc = start(
        """
        import time
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            pass
    """,
        group,
    )
    assert wait_exit(proc, 10) == 0, proc.tail(20)
    wall = time.monotonic() - t0
    after = group.stats()
    rate = (after.cpu_usage_seconds - before.cpu_usage_seconds) / wall
    assert 0.2 * 0.6 <= rate <= 0.2 * 1.4, (rate, wall, before, after)
    assert after.nr_throttled > 0, after
    assert after.throttled_seconds > 0, after
    assert after.nr_periods >= after.nr_throttled


def test_memory_limit_64mi_oom_kills(
    support: CgroupSupport, run_id: str, start: Callable[[str, ContainerCgroup], Proc]
) -> None:
    group = ContainerCgroup.create(run_id, "worker-0", "celery", 0, 64 * MI, support)
    before = group.stats()
    proc = start(
        """
        chunks = []
        for _ in range(200):
            chunks.append(b"\\x01" * (1 << 20))  # 200 MB of really resident pages
        print("survived", flush=True)
    """,
        group,
    )
    assert wait_exit(proc, 20) == -signal.SIGKILL, proc.tail(20)
    assert "survived" not in proc.tail(20)
    after = group.stats()
    if before.oom_kills is not None:
        assert after.oom_kills is not None and after.oom_kills > before.oom_kills, (before, after)
    assert after.memory_usage_bytes <= 64 * MI


def test_stats_working_set_and_usage(
    support: CgroupSupport, run_id: str, start: Callable[[str, ContainerCgroup], Proc]
) -> None:
    group = ContainerCgroup.create(run_id, "web-1", "gunicorn", 0, 256 * MI, support)
    proc = start(
        """
        import time
        block = b"\\x01" * (50 << 20)
        print("ready", flush=True)
        time.sleep(60)
    """,
        group,
    )
    deadline = time.monotonic() + 10
    while "ready" not in proc.tail(5) and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = group.stats()
    assert 50 * MI <= stats.working_set_bytes <= stats.memory_usage_bytes <= 256 * MI, stats
    assert stats.cpu_usage_seconds > 0


def test_destroy_kills_members_and_removes_the_group(
    support: CgroupSupport, run_id: str, start: Callable[[str, ContainerCgroup], Proc]
) -> None:
    group = ContainerCgroup.create(run_id, "web-2", "nginx", 100, 32 * MI, support)
    proc = start(
        "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)", group
    )

    def members() -> set[int]:
        return {int(p) for f in group.procs_files for p in f.read_text().split()}

    deadline = time.monotonic() + 10  # python starts slowly at 100m
    while len(members()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(members()) == 2, members()  # the leader and the sleep it forked
    group.destroy()
    assert not any(d.exists() for d in group.dirs.values())
    assert wait_exit(proc, 5) == -signal.SIGKILL
    group.destroy()  # idempotent


def test_cleanup_run_removes_the_whole_tree(
    support: CgroupSupport, run_id: str, start: Callable[[str, ContainerCgroup], Proc]
) -> None:
    a = ContainerCgroup.create(run_id, "web-3", "gunicorn", 500, 0, support)
    b = ContainerCgroup.create(run_id, "postgres-0", "postgres", 0, 128 * MI, support)
    proc = start("import time; time.sleep(60)", a)
    assert group_dirs(support, run_id)
    removed = cleanup_run(run_id, support)
    assert removed, "cleanup_run found nothing to remove"
    assert group_dirs(support, run_id) == []
    assert not any(d.exists() for d in (*a.dirs.values(), *b.dirs.values()))
    assert wait_exit(proc, 5) == -signal.SIGKILL
    assert cleanup_run(run_id, support) == []


def test_add_moves_a_running_process(support: CgroupSupport, run_id: str, tmp_path: Path) -> None:
    group = ContainerCgroup.create(run_id, "web-4", "gunicorn", 0, 0, support)
    proc = spawn(["sleep", "60"], env=dict(os.environ), cwd=tmp_path, log_path=tmp_path / "s.log")
    try:
        group.add(proc.pid)
        for procs in group.procs_files:
            assert str(proc.pid) in procs.read_text().split()
    finally:
        proc.kill()


def test_v2_stats_are_read_from_kernel_formats(tmp_path: Path) -> None:
    # cgroup v2 cannot be enabled on this machine (its controllers are bound to v1), so the v2
    # reading path is checked on files in the kernel's exact format (Documentation/cgroup-v2).
    leaf = tmp_path / "finchsim" / "r1" / "web-0_gunicorn"
    leaf.mkdir(parents=True)
    (leaf / "cpu.stat").write_text(
        "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 40\n"
        "nr_throttled 30\nthrottled_usec 1500000\nnr_bursts 0\nburst_usec 0\n"
    )
    (leaf / "memory.current").write_text("104857600\n")
    (leaf / "memory.stat").write_text("anon 83886080\nfile 20971520\ninactive_file 10485760\n")
    (leaf / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    support = CgroupSupport(2, {"unified": tmp_path}, True, "")
    stats = ContainerCgroup(support, {"unified": leaf}).stats()
    assert stats == CgroupStats(2.5, 40, 30, 1.5, 100 * MI, 90 * MI, 1)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to an unprivileged user")
def test_detect_without_permission_degrades_with_a_reason() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child drops to nobody and reports what detect() says
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            found = detect()
            os.write(write, f"{found.usable}|{found.reason}".encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        usable, reason = fh.read().split("|", 1)
    os.waitpid(pid, 0)
    assert usable == "False"
    assert "cannot create a cgroup under" in reason and "measuring without limits" in reason
