"""Process trees for the local platform: one Kubernetes container = one process group.

`spawn` starts a child in its own session (so its pgid is its pid and the whole tree can be
signalled at once), appends its output to a log file, and sets `PR_SET_PDEATHSIG(SIGKILL)` so the
child dies with the harness even when the harness is SIGKILLed. Caveat from prctl(2): the "parent"
is the *thread* that forked, so call `spawn` from a thread that lives as long as the platform (the
main thread). Children that daemonise (double fork + setsid) escape both the group and PDEATHSIG;
run servers in the foreground (`daemon off;` for nginx, no `-D` for postgres).

`ProcessRegistry` records every group in `<run_dir>/processes.json` so that `finchsim down` run
from another process can kill leftovers after a crash (see `kill_all_recorded`).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from finchsim.deathsig import die_with_parent

REGISTRY_FILE = "processes.json"


def _start_ticks(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat): an exact
    identity that, with the pid, cannot repeat within one boot."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # comm (field 2) may contain spaces and parentheses: split after its closing parenthesis.
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def _scan() -> list[tuple[int, int, int, bytes]]:
    """(pid, ppid, pgid, state) of every process, from /proc/<pid>/stat in one pass (plain
    bytes I/O: this is the hot part of sampling)."""
    rows = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split(None, 4)
        except (OSError, IndexError):
            continue  # exited while we were scanning
        rows.append((int(name), int(fields[1]), int(fields[2]), fields[0]))
    return rows


def _group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is still in process group `pgid` (zombies of a non-reaping
    init would otherwise keep `killpg(pgid, 0)` succeeding forever)."""
    return any(pg == pgid and state != b"Z" for _, _, pg, state in _scan())


def children_map() -> dict[int, list[int]]:
    """ppid -> child pids of the whole machine. Building it is most of the cost of a sample
    (~1.8 ms with ~90 processes): build it once per sampling round and pass it to each `sample`."""
    kids: dict[int, list[int]] = {}
    for pid, ppid, _, _ in _scan():
        kids.setdefault(ppid, []).append(pid)
    return kids


@dataclass(frozen=True)
class Usage:
    """One sample of a process tree, in the units kubelet/cAdvisor report."""

    cpu_seconds: float  # cumulative user+system of the tree, never decreasing
    rss_bytes: int  # sum of RSS: over-counts pages shared between forked workers
    working_set_bytes: int  # sum of PSS: each resident page counted once across the tree
    processes: int
    at_monotonic: float


class Proc:
    """A running (or finished) process group started by `spawn`."""

    def __init__(self, popen: subprocess.Popen[bytes], argv: Sequence[str], log_path: Path) -> None:
        self.popen = popen
        self.argv = list(argv)
        self.log_path = log_path
        self.pid = popen.pid
        self.pgid = popen.pid  # start_new_session=True makes the child a session+group leader
        self.started_monotonic = time.monotonic()
        self.started_wall = time.time()
        self.start_ticks = _start_ticks(self.pid)
        self._cpu_high_water = 0.0

    @property
    def returncode(self) -> int | None:
        """Exit status of the group leader (negative signal number if killed), None if running."""
        return self.popen.poll()

    def alive(self) -> bool:
        """Whether the group leader is still running (not exited, not a zombie)."""
        return self.popen.poll() is None

    def tree_pids(self, kids: dict[int, list[int]] | None = None) -> list[int]:
        """The leader and all its live descendants (including ones that left the group), from a
        fresh `children_map()` unless one is given. Empty once the leader has been reaped."""
        if self.popen.poll() is not None:
            # Reaped: the pid may already belong to another process, and orphans of the tree
            # were reparented away, so there is no tree left to follow (killpg still reaches
            # group members). Until we reap it, the pid cannot be reused.
            return []
        kids = kids if kids is not None else children_map()
        out, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(kids.get(pid, ()))
        return out

    def _signal(self, sig: signal.Signals, leader_only: bool = False) -> None:
        """Signal the group, plus descendants that left it (setsid/setpgid), each exactly once:
        a second SIGTERM landing during a clean exit would kill with the default action."""
        if leader_only:
            if self.popen.poll() is None:
                os.kill(self.pid, sig)
            return
        strays = []
        for pid in self.tree_pids():
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(pid) != self.pgid:
                    strays.append(pid)
        for pid in [-self.pgid, *strays]:  # kill(-pgid) == killpg(pgid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def _wait_gone(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            self.popen.poll()  # reap the leader, or it stays a zombie member of the group
            if self.popen.returncode is not None and not _group_alive(self.pgid):
                return True
            time.sleep(0.02)
        return False

    def terminate(self, grace_s: float = 10.0, leader_only: bool = False) -> None:
        """SIGTERM the group, wait up to `grace_s` for every member to exit, then SIGKILL what
        is left and reap the leader. Never raises when the group is already gone.
        `leader_only=True` sends SIGTERM to the leader alone, as a container runtime does (only
        PID 1 gets it), so a gunicorn/celery master drives its own workers' shutdown."""
        self._signal(signal.SIGTERM, leader_only)
        if not self._wait_gone(time.monotonic() + grace_s):
            self.kill()

    def kill(self) -> None:
        """SIGKILL the whole group at once, like a pod killed abruptly, and reap the leader."""
        self._signal(signal.SIGKILL)
        self._wait_gone(time.monotonic() + 5.0)

    def sample(self, kids: dict[int, list[int]] | None = None) -> Usage:
        """CPU and memory of the whole tree now.

        CPU = sum over live tree processes of user+system + children_user/system (CPU of
        descendants already reaped by a tree member). Descendants reparented away from the tree
        (orphans) take their CPU with them, and a dying process may vanish between reads, so the
        result is clamped to never decrease. Memory: RSS sum, and PSS sum from smaps_rollup as the
        working set (close to the cgroup charge cAdvisor reads, minus page cache the tree did not
        map); falls back to RSS where smaps is unreadable. Pass `kids` (`children_map()`) to
        share one /proc scan between the samples of one round."""
        cpu = rss = pss = count = 0
        for pid in self.tree_pids(kids):
            try:
                proc = psutil.Process(pid)
                with proc.oneshot():
                    t = proc.cpu_times()
                    mem = proc.memory_info()
                    try:
                        pss += proc.memory_full_info().pss
                    except (psutil.AccessDenied, AttributeError):
                        pss += mem.rss
            except psutil.Error:
                continue
            cpu += t.user + t.system + t.children_user + t.children_system
            rss += mem.rss
            count += 1
        self._cpu_high_water = max(self._cpu_high_water, float(cpu))
        return Usage(self._cpu_high_water, rss, pss, count, time.monotonic())

    def tail(self, n_lines: int = 50) -> str:
        """The last `n_lines` lines of the log, reading only the end of the file."""
        try:
            with self.log_path.open("rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                block, data = 8192, b""
                while size > 0 and data.count(b"\n") <= n_lines:
                    step = min(block, size)
                    size -= step
                    fh.seek(size)
                    data = fh.read(step) + data
        except FileNotFoundError:
            return ""
        lines = data.decode(errors="replace").splitlines()
        return "\n".join(lines[-n_lines:]) if n_lines > 0 else ""


def _child_setup(
    parent_pid: int,
    cgroup_procs: Sequence[Path],
    ids: tuple[int, ...] | None,
    death_signal: int,
) -> None:
    """Runs in the child between fork and exec. Order matters: join the cgroups while still root
    (cgroup.procs is root-owned), then drop to `user`, then set PDEATHSIG (prctl(2): any change
    of effective uid/gid clears it, which is why Popen's own user=/group= are not used). No
    name lookups here: NSS after fork in a threaded parent can deadlock."""
    for procs_file in cgroup_procs:
        with open(procs_file, "w") as fh:
            fh.write(str(os.getpid()))
    if ids is not None:
        os.setgroups(list(ids[2:]))
        os.setgid(ids[1])
        os.setuid(ids[0])
    die_with_parent(parent_pid, death_signal)


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | str,
    log_path: Path,
    user: str | None = None,
    cgroup_procs: Sequence[Path] = (),
    ids: tuple[int, ...] | None = None,
    death_signal: int = signal.SIGKILL,
) -> Proc:
    """Start `argv` in its own session/process group with stdout+stderr appended to `log_path`,
    dying with the harness (PDEATHSIG `death_signal`: SIGTERM for a master whose workers, which
    PDEATHSIG does not reach, must be stopped by it — nginx's would keep the ports). `env` is the
    complete environment. `user` runs it as that OS user with its primary group (needs root);
    `ids` runs it as (uid, gid, *groups) instead, as a container's `runAsUser`/`runAsGroup` with
    `fsGroup`/`supplementalGroups`. `cgroup_procs` are `cgroup.procs` files the child joins
    before exec (`ContainerCgroup.procs_files`), so no descendant is forked outside its limits.
    Raises OSError/SubprocessError if it cannot start."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    parent, files = os.getpid(), list(cgroup_procs)
    if user is not None:
        entry = pwd.getpwnam(user)  # KeyError here rather than an opaque preexec_fn error
        ids = (entry.pw_uid, entry.pw_gid)
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            preexec_fn=lambda: _child_setup(parent, files, ids, death_signal),
        )
    return Proc(popen, argv, log_path)


class ProcessRegistry:
    """The groups one run started, persisted in `<run_dir>/processes.json` after every change
    (single-writer: the process that runs the platform)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / REGISTRY_FILE
        self._records: dict[str, dict[str, object]] = (
            json.loads(self.path.read_text()) if self.path.exists() else {}
        )

    def register(self, proc: Proc, label: str = "") -> None:
        """Record `proc`'s group with the leader's start time (the guard against pid reuse)."""
        self._records[str(proc.pgid)] = {
            "pid": proc.pid,
            "start_ticks": proc.start_ticks,
            "boot_id": _boot_id(),
            "label": label,
            "argv": proc.argv,
        }
        self._save()

    def unregister(self, proc: Proc) -> None:
        """Forget `proc` (after it was stopped cleanly)."""
        if self._records.pop(str(proc.pgid), None) is not None:
            self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._records, indent=1))
        os.replace(tmp, self.path)  # atomic: a crash never leaves half a file for `down`

    @staticmethod
    def kill_all_recorded(run_dir: Path) -> list[int]:
        """SIGKILL every recorded group that still belongs to this run; return the pgids killed.

        A group is ours when its leader still runs with the recorded start time, or when the
        leader is gone but members remain: Linux does not hand out a pid that is still some
        group's pgid, so such members can only be the leader's descendants. A live pid with another
        start time (or another boot) is a reused pid and is left alone."""
        path = run_dir / REGISTRY_FILE
        if not path.exists():
            return []
        killed: list[int] = []
        for pgid_text, rec in json.loads(path.read_text()).items():
            pgid, boot = int(pgid_text), rec.get("boot_id")
            if boot != _boot_id():
                continue
            ticks = _start_ticks(pgid)
            if ticks is not None and ticks != rec.get("start_ticks"):
                continue
            if ticks is None and not _group_alive(pgid):
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
                killed.append(pgid)
        path.unlink(missing_ok=True)
        return killed


def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
