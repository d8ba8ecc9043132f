"""CPU and memory limits for local "containers" through Linux cgroups (v1 or v2).

Groups live at `<base>/finchsim/<run_id>/<pod>_<container>`, where `<base>` is the cgroup this
process already runs in (per hierarchy on v1), so the harness stays inside whatever cgroup a
supervisor put it in; on v2 the hierarchy root is the fallback because a non-root cgroup holding
processes cannot enable controllers for children. Limits mirror the kubelet's:
cpu quota = limit_m * 100 µs per 100 ms period (at least 1 ms, as the kubelet clamps), memory
limit with swap off. Without permission or controllers, `detect()` says why and the platform
only measures (processes.Proc.sample).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from finchsim.errors import PlatformError

PERIOD_US = 100_000
MIN_QUOTA_US = 1_000
V1_CONTROLLERS = ("cpu", "cpuacct", "memory")


@dataclass(frozen=True)
class CgroupSupport:
    """What this machine allows. `bases` maps a v1 controller (or "unified" on v2) to the
    directory under which `finchsim/` groups are made; `reason` explains `usable=False`."""

    version: int | None
    bases: dict[str, Path]
    usable: bool
    reason: str


@dataclass(frozen=True)
class CgroupStats:
    """One reading of a container group, in cAdvisor's terms."""

    cpu_usage_seconds: float
    nr_periods: int
    nr_throttled: int
    throttled_seconds: float
    memory_usage_bytes: int
    working_set_bytes: int  # usage - inactive_file, floored at 0 (cAdvisor)
    oom_kills: int | None  # None when the kernel does not expose the counter


def _mounts() -> tuple[dict[str, tuple[Path, str]], tuple[Path, str] | None]:
    """v1 controller -> (mount point, mount root) and the v2 (mount point, root), if any."""
    v1: dict[str, tuple[Path, str]] = {}
    v2 = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, (fstype, _src, opts) = left.split(), right.split()[:3]
        if fstype == "cgroup":
            for opt in opts.split(","):
                if opt in V1_CONTROLLERS:
                    v1[opt] = (Path(fields[4]), fields[3])
        elif fstype == "cgroup2":
            v2 = (Path(fields[4]), fields[3])
    return v1, v2


def _own(hierarchy: str) -> str:
    """This process's cgroup path in a v1 controller's hierarchy ("" for v2)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if (hierarchy == "" and names == "") or hierarchy in names.split(","):
            return path
    return "/"


def _join(mount: tuple[Path, str], path: str) -> Path:
    point, root = mount
    rel = os.path.relpath(path, root) if path.startswith(root) else "."
    return (point / rel).resolve()


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _enable_v2(group: Path) -> None:
    """Delegate cpu and memory to `group`'s children (fails with EBUSY if it holds processes)."""
    enabled = (group / "cgroup.subtree_control").read_text().split()
    if not {"cpu", "memory"} <= set(enabled):
        _write(group / "cgroup.subtree_control", "+cpu +memory")


def _probe(version: int, bases: dict[str, Path]) -> str:
    """Create and remove a test group under every base; return "" or why it failed."""
    for base in dict.fromkeys(bases.values()):
        parent, made_parent = base / "finchsim", not (base / "finchsim").exists()
        probe = parent / f".probe-{os.getpid()}"
        try:
            if version == 2:
                _enable_v2(base)
            parent.mkdir(exist_ok=True)
            if version == 2:
                _enable_v2(parent)
            probe.mkdir()
            limit = "cpu.max" if version == 2 else "cpu.cfs_quota_us"
            if (probe / limit).exists():
                _write(probe / limit, "max" if version == 2 else "-1")
        except OSError as exc:
            return (
                f"cannot create a cgroup under {base}: {exc.strerror} (needs root or a "
                "delegated cgroup subtree); measuring without limits"
            )
        finally:
            with contextlib.suppress(OSError):
                probe.rmdir()
            if made_parent:
                with contextlib.suppress(OSError):
                    parent.rmdir()
    return ""


def detect() -> CgroupSupport:
    """Find a usable cgroup setup by creating and removing a test group: v1 when the cpu,
    cpuacct and memory hierarchies are mounted, else v2 with cpu and memory controllers."""
    v1, v2 = _mounts()
    if all(c in v1 for c in V1_CONTROLLERS):
        bases = {c: _join(v1[c], _own(c)) for c in V1_CONTROLLERS}
        reason = _probe(1, bases)
        return CgroupSupport(1, bases, not reason, reason)
    if v2 is not None:
        controllers = (v2[0] / "cgroup.controllers").read_text().split()
        if {"cpu", "memory"} <= set(controllers):
            reason = ""
            for base in dict.fromkeys([_join(v2, _own("")), v2[0]]):
                reason = _probe(2, {"unified": base})
                if not reason:
                    return CgroupSupport(2, {"unified": base}, True, "")
            return CgroupSupport(2, {"unified": v2[0]}, False, reason)
    return CgroupSupport(
        None,
        {},
        False,
        "no cgroup v1 cpu/cpuacct/memory hierarchies and no "
        "cgroup v2 with cpu and memory controllers; measuring without limits",
    )


def _kill_members(group: Path, timeout: float = 5.0) -> None:
    """SIGKILL every process in `group` and wait until it is empty (a pod's containers die with
    it); `cgroup.kill` on v2 also catches processes forking during the kill."""
    if (group / "cgroup.kill").exists():
        _write(group / "cgroup.kill", "1")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)
    raise PlatformError(f"processes in {group} survived SIGKILL for {timeout:.0f} s")


def _remove_tree(top: Path) -> None:
    """Kill the members of every group under `top` (children first) and remove the groups."""
    for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
        _kill_members(Path(dirpath))
        for _ in range(50):  # a just-killed task can keep the group busy for a moment
            try:
                Path(dirpath).rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                time.sleep(0.02)


def _flat(path: Path) -> dict[str, int]:
    """A `key value` file (memory.stat, cpu.stat, memory.events, memory.oom_control)."""
    out: dict[str, int] = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = int(value)
    return out


class ContainerCgroup:
    """The cgroup(s) of one container: one directory per v1 hierarchy, or one on v2."""

    def __init__(self, support: CgroupSupport, dirs: dict[str, Path]) -> None:
        self.support = support
        self.dirs = dirs

    @classmethod
    def create(
        cls,
        run_id: str,
        pod: str,
        container: str,
        cpu_limit_m: int,
        memory_limit_bytes: int,
        support: CgroupSupport | None = None,
    ) -> ContainerCgroup:
        """Make the group with the container's limits (0 = unlimited). Raises PlatformError when
        cgroups are unusable (check `detect().usable` first) or a write fails."""
        support = support or detect()
        if not support.usable:
            raise PlatformError(f"cgroup limits unavailable: {support.reason}")
        name = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{pod}_{container}")
        dirs = {c: base / "finchsim" / run_id / name for c, base in support.bases.items()}
        group = cls(support, dirs)
        try:
            group._make(cpu_limit_m, memory_limit_bytes)
        except OSError as exc:
            group.destroy()
            raise PlatformError(f"cannot set up cgroup {name}: {exc}") from exc
        return group

    def _make(self, cpu_m: int, mem: int) -> None:
        quota = max(cpu_m * PERIOD_US // 1000, MIN_QUOTA_US) if cpu_m > 0 else None
        if self.support.version == 2:
            base, leaf = self.support.bases["unified"], self.dirs["unified"]
            for group in (base, base / "finchsim", leaf.parent):
                group.mkdir(exist_ok=True)
                _enable_v2(group)
            leaf.mkdir(exist_ok=True)
            _write(leaf / "cpu.max", f"{quota or 'max'} {PERIOD_US}")
            _write(leaf / "memory.max", str(mem) if mem > 0 else "max")
            if mem > 0 and (leaf / "memory.swap.max").exists():
                _write(leaf / "memory.swap.max", "0")  # Kubernetes nodes run without swap
            return
        for leaf in set(self.dirs.values()):
            leaf.mkdir(parents=True, exist_ok=True)
        cpu = self.dirs["cpu"]
        _write(cpu / "cpu.cfs_period_us", str(PERIOD_US))
        _write(cpu / "cpu.cfs_quota_us", str(quota or -1))
        if mem > 0:
            memory = self.dirs["memory"]
            _write(memory / "memory.limit_in_bytes", str(mem))
            if (memory / "memory.memsw.limit_in_bytes").exists():
                _write(memory / "memory.memsw.limit_in_bytes", str(mem))  # no swap, as on k8s

    @property
    def procs_files(self) -> list[Path]:
        """The `cgroup.procs` files a process joins by writing itself (`spawn(cgroup_procs=)`)."""
        return [d / "cgroup.procs" for d in dict.fromkeys(self.dirs.values())]

    def add(self, pid: int) -> None:
        """Move `pid` into the group; children it forks afterwards inherit it, those it already
        has stay behind, and on v1 memory it already used stays charged to the old group: prefer
        joining before exec with `spawn(cgroup_procs=self.procs_files)`."""
        for procs in self.procs_files:
            _write(procs, str(pid))

    def stats(self) -> CgroupStats:
        """Current counters: CPU seconds, CFS throttling, memory usage / working set, OOM kills."""
        if self.support.version == 2:
            d = self.dirs["unified"]
            cpu, mstat = _flat(d / "cpu.stat"), _flat(d / "memory.stat")
            usage = int((d / "memory.current").read_text())
            return CgroupStats(
                cpu["usage_usec"] / 1e6,
                cpu.get("nr_periods", 0),
                cpu.get("nr_throttled", 0),
                cpu.get("throttled_usec", 0) / 1e6,
                usage,
                max(0, usage - mstat.get("inactive_file", 0)),
                _flat(d / "memory.events").get("oom_kill"),
            )
        cpu, mem = _flat(self.dirs["cpu"] / "cpu.stat"), self.dirs["memory"]
        usage = int((mem / "memory.usage_in_bytes").read_text())
        inactive = _flat(mem / "memory.stat").get("total_inactive_file", 0)
        return CgroupStats(
            int((self.dirs["cpuacct"] / "cpuacct.usage").read_text()) / 1e9,
            cpu.get("nr_periods", 0),
            cpu.get("nr_throttled", 0),
            cpu.get("throttled_time", 0) / 1e9,
            usage,
            max(0, usage - inactive),
            _flat(mem / "memory.oom_control").get("oom_kill"),
        )

    def destroy(self) -> None:
        """Kill whatever still runs in the group and remove it. Idempotent."""
        for leaf in dict.fromkeys(self.dirs.values()):
            if leaf.exists():
                _remove_tree(leaf)


def _run_dirs(support: CgroupSupport, run_id: str) -> list[Path]:
    """Every `finchsim/<run_id>` directory: under this process's bases, and anywhere else in the
    hierarchies (up to 8 levels deep) for a `down` started from another cgroup."""
    found: dict[Path, None] = {}
    for base in dict.fromkeys(support.bases.values()):
        mount = next(p for p in (base, *base.parents) if os.path.ismount(p))
        for dirpath, dirs, _files in os.walk(mount):
            here = Path(dirpath)
            if here.name == "finchsim" and run_id in dirs:
                found[here / run_id] = None
            if len(here.relative_to(mount).parts) >= 8 or here.name == "finchsim":
                dirs.clear()
    return list(found)


def cleanup_run(run_id: str, support: CgroupSupport | None = None) -> list[Path]:
    """Kill every process in a run's groups and remove its whole tree (what `finchsim down`
    does after a crash); return the run directories removed. Idempotent."""
    support = support or detect()
    if not support.usable:
        return []
    removed = _run_dirs(support, run_id)
    for top in removed:
        _remove_tree(top)
        with contextlib.suppress(OSError):  # other runs may still use the finchsim/ parent
            top.parent.rmdir()
    return removed
