"""Pods and their containers as local processes, with the kubelet's behaviour.

A container that exits is restarted with the kubelet's crash-loop back-off (10 s doubling to
5 min, reset after 10 min of running); liveness failures restart it; readiness decides whether
the pod is an endpoint; a startup probe holds the other probes back until it passes. Exec probes
cannot run the image's binaries here and are checked as TCP connects to the container's first
port (documented in the README)."""

from __future__ import annotations

import contextlib
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from finchsim.errors import PlatformError
from finchsim.platform.local.cgroups import CgroupSupport, ContainerCgroup
from finchsim.platform.local.postgres import LocalPostgres
from finchsim.platform.local.processes import Proc, Usage, spawn
from finchsim.platform.local.redis import LocalRedis
from finchsim.platform.local.runtimes import Launch, PodEnv, runtime_for
from finchsim.platform.topology import Container, Probe, Workload

BACKOFF_START = 10.0
BACKOFF_MAX = 300.0
BACKOFF_RESET_AFTER = 600.0


@dataclass
class ProbeState:
    successes: int = 0
    failures: int = 0
    last_run: float = 0.0
    passed: bool = False  # startup: has passed once; readiness: current verdict


@dataclass
class ContainerRun:
    """One container of one pod: its process, its restarts, its probe history."""

    spec: Container
    init: bool = False
    proc: Proc | None = None
    server: LocalPostgres | LocalRedis | None = None
    cgroup: ContainerCgroup | None = None
    restarts: int = 0
    started_at: float = 0.0  # monotonic
    next_start: float = 0.0  # monotonic; back-off gate
    backoff: float = 0.0
    exit_code: int | None = None
    completed: bool = False  # init containers: exited 0; a Job's containers: exited for good
    startup: ProbeState = field(default_factory=ProbeState)
    liveness: ProbeState = field(default_factory=ProbeState)
    readiness: ProbeState = field(default_factory=ProbeState)
    last_usage: Usage | None = None

    @property
    def running(self) -> bool:
        if self.server is not None:
            return self.server.running
        return self.proc is not None and self.proc.alive()

    @property
    def process(self) -> Proc | None:
        return self.server.proc if self.server is not None else self.proc


class Pod:
    """A pod bound to a virtual node. The controller drives it with `step()`."""

    def __init__(
        self,
        name: str,
        workload: Workload,
        node: str,
        pod_env: PodEnv,
        cgroups: CgroupSupport | None,
        run_id: str,
    ) -> None:
        self.name = name
        self.workload = workload
        self.node = node
        self.env = pod_env
        self.cgroups = cgroups
        self.run_id = run_id
        self.uid = str(uuid.uuid4())  # metadata.uid: a new pod, even under an old name
        self.created = time.time()
        self.revision = 1  # the template revision it runs (a rollout bumps the workload's)
        self.phase = "Pending"
        self.ready = False
        self.ready_transition: float | None = None
        self.deleting = False
        # Told of every process group started, so a crashed run can still be cleaned up.
        self.on_spawn: Callable[[Proc, str], None] = lambda _proc, _label: None
        self.inits = [ContainerRun(c, init=True) for c in workload.init_containers]
        self.containers = [ContainerRun(c) for c in workload.containers]
        for run in self.inits + self.containers:
            runtime_for(run.spec)  # fail now, not at start, for an image without a runtime
        pod_env.pod_dir.mkdir(parents=True, exist_ok=True)

    # -- lifecycle ---------------------------------------------------------------------------

    def step(self, now: float) -> None:
        """Advance: run init containers in order, then start/restart the main containers."""
        if self.deleting or self.phase in ("Failed", "Succeeded"):
            return
        for run in self.inits:
            if run.completed:
                continue
            if run.running:
                return
            if run.proc is not None:  # exited
                code = run.proc.returncode
                self._release(run)
                if code == 0:
                    run.completed = True
                    continue
                self._crashed(run, now)
                return
            if now >= run.next_start:
                self._start(run, now)
            return
        self.phase = "Running"
        for run in self.containers:
            if run.running:
                if now - run.started_at > BACKOFF_RESET_AFTER:
                    run.backoff = 0.0
                continue
            if run.completed:
                continue
            if run.proc is not None or run.server is not None:
                self._release(run)
                if self._terminated(run):
                    continue
                self._crashed(run, now)
            if now >= run.next_start:
                self._start(run, now)
        if self.containers and all(r.completed for r in self.containers):
            failed = any(r.exit_code != 0 for r in self.containers)
            self.phase = "Failed" if failed else "Succeeded"

    def _terminated(self, run: ContainerRun) -> bool:
        """restartPolicy decides whether an exited container stays exited (a Job's pod)."""
        policy = self.workload.restart_policy
        if policy == "Never" or (policy == "OnFailure" and run.exit_code == 0):
            run.completed = True
            return True
        return False

    def stop(self, grace: float = 10.0) -> None:
        """Graceful deletion: SIGTERM to each container's main process, SIGKILL after grace."""
        self.deleting = True
        self.ready = False
        for run in self.containers + self.inits:
            if run.server is not None:
                with contextlib.suppress(Exception):
                    run.server.stop(grace)
            if run.proc is not None:
                run.proc.terminate(grace, leader_only=True)
            self._release(run)
        self.phase = "Succeeded"

    def kill(self) -> None:
        """Abrupt death (node crash, OOM, SIGKILL): no grace, no clean shutdown."""
        self.deleting = True
        self.ready = False
        for run in self.containers + self.inits:
            if run.server is not None and run.server.proc is not None:
                run.server.proc.kill()
                run.server.proc = None
            if run.proc is not None:
                run.proc.kill()
            self._release(run)
        self.phase = "Failed"

    def restart_container(self, run: ContainerRun, now: float) -> None:
        """The kubelet's reaction to a failed liveness probe: kill and start again."""
        if run.server is not None:
            run.server.stop(1.0)
        elif run.proc is not None:
            run.proc.terminate(1.0, leader_only=True)
        self._release(run)
        run.restarts += 1
        run.liveness = ProbeState()
        run.readiness = ProbeState()
        run.startup = ProbeState()
        self._start(run, now)

    def _crashed(self, run: ContainerRun, now: float) -> None:
        run.restarts += 1
        run.backoff = BACKOFF_START if run.backoff == 0 else min(run.backoff * 2, BACKOFF_MAX)
        run.next_start = now + run.backoff
        run.liveness, run.readiness, run.startup = ProbeState(), ProbeState(), ProbeState()

    def _start(self, run: ContainerRun, now: float) -> None:
        launch = runtime_for(run.spec)(run.spec, self.env)
        log = self.env.pod_dir / f"{run.spec.name}.log"
        procs: list[Path] = []
        if self.cgroups is not None and self.cgroups.usable and run.cgroup is None:
            res = run.spec.resources
            run.cgroup = ContainerCgroup.create(
                self.run_id,
                self.name,
                run.spec.name,
                res.cpu_limit_m,
                res.memory_limit,
                self.cgroups,
            )
        if run.cgroup is not None:
            procs = run.cgroup.procs_files
        run.started_at = now
        run.exit_code = None
        try:
            if launch.kind == "postgres":
                run.server = _postgres(launch, self.env, run.server)
                run.server.start(cgroup_procs=procs)
            elif launch.kind == "redis":
                run.server = _redis(launch, self.env)
                run.server.start(cgroup_procs=procs)
            else:
                run.proc = spawn(
                    launch.argv,
                    env=launch.env,
                    cwd=launch.cwd,
                    log_path=log,
                    user=launch.user,
                    cgroup_procs=procs,
                )
        except (PlatformError, OSError) as exc:  # CreateContainerError, in kubelet terms
            with log.open("a") as out:
                out.write(f"finchsim: container failed to start: {exc}\n")
            run.server = None
            self._crashed(run, now)
            return
        if run.process is not None:
            self.on_spawn(run.process, f"{self.name}/{run.spec.name}")

    def _release(self, run: ContainerRun) -> None:
        if run.proc is not None:
            run.exit_code = run.proc.returncode
        run.proc = None
        if run.server is not None and not run.server.running:
            run.server = None

    def destroy_cgroups(self) -> None:
        for run in self.containers + self.inits:
            if run.cgroup is not None:
                with contextlib.suppress(Exception):
                    run.cgroup.destroy()
                run.cgroup = None

    # -- probes ------------------------------------------------------------------------------

    def probe_due(self, run: ContainerRun, kind: str, probe: Probe, now: float) -> bool:
        state: ProbeState = getattr(run, kind)
        if not run.running or now - run.started_at < probe.initial_delay:
            return False
        return now - state.last_run >= probe.period

    def probe_target(self, run: ContainerRun, probe: Probe) -> tuple[str, int, str]:
        if probe.kind == "httpGet":
            port = run.spec.port(probe.port)
            return "http", self.env.ports.get(port, port), probe.path
        port = (
            run.spec.port(probe.port)
            if probe.kind == "tcpSocket"
            else next(iter(run.spec.ports.values()), 0)
        )
        return "tcp", self.env.ports.get(port, port), ""


def check(kind: str, port: int, path: str, timeout: float) -> bool:
    """One probe attempt against 127.0.0.1, as the kubelet judges it (HTTP 200-399 = success)."""
    try:
        if kind == "http":
            url = f"http://127.0.0.1:{port}{path}"
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                status: int = resp.status
                return 200 <= status < 400
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _postgres(
    launch: Launch, pod: PodEnv, existing: LocalPostgres | LocalRedis | None
) -> LocalPostgres:
    settings = {}
    args = iter(launch.argv)
    for word in args:
        if word == "-c":
            key, _, value = next(args, "").partition("=")
            settings[key] = value
    data = pod.mounts.get("/var/lib/postgresql/data", pod.pod_dir / "pgdata")
    env = launch.env
    return LocalPostgres(
        data,
        dbname=env.get("POSTGRES_DB", "finch"),
        user=env.get("POSTGRES_USER", "finch"),
        password=env.get("POSTGRES_PASSWORD"),
        port=pod.ports.get(5432),
        settings=settings,
    )


def _redis(launch: Launch, pod: PodEnv) -> LocalRedis:
    opts: dict[str, str] = {}
    words = list(launch.argv)
    for i, word in enumerate(words):
        if word.startswith("--") and i + 1 < len(words):
            opts[word[2:]] = words[i + 1]
    data = Path(opts.get("dir", str(pod.pod_dir / "data")))
    return LocalRedis(
        data,
        password=opts.get("requirepass", ""),
        maxmemory_policy=opts.get("maxmemory-policy", "noeviction"),
        appendonly=opts.get("appendonly", "no") == "yes",
        maxmemory=opts.get("maxmemory"),
        port=pod.ports.get(6379),
    )
