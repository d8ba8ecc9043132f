"""One pod as finch's kubelet runs it: init containers in order, then the containers, each a
process group on the pod's own loopback address, restarted by the pod's restartPolicy with the
crash-loop back-off, probed with the manifest's timings; stopped with its grace period when the
API server marks it for deletion. `status()` is the pod status the kubelet reports."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from finchsim.errors import InputError, PlatformError
from finchsim.platform.kubelet.container import ContainerRun, Probing, rfc3339
from finchsim.platform.kubelet.probes import ProbePool
from finchsim.platform.kubelet.servers import start_server
from finchsim.platform.kubelet.spec import (
    ApiLookups,
    ConfigError,
    PodPlan,
    resolve_env,
    volume_dirs,
    with_env,
)
from finchsim.platform.kubelet.users import reachable
from finchsim.platform.local.cgroups import CgroupSupport, ContainerCgroup
from finchsim.platform.local.processes import Proc, spawn
from finchsim.platform.local.runtimes import PodEnv, runtime_for
from finchsim.platform.podspec import Probe

CONFIG_RETRY = 2.0


class PodWorker:
    """Owned by the kubelet's sync thread; `terminate` hands the pod to a stopping thread."""

    def __init__(
        self,
        pod: dict[str, Any],
        plan: PodPlan,
        ip: str,
        host_ip: str,
        pod_dir: Path,
        claims_dir: Path,
        project_root: Path,
        cgroups: CgroupSupport | None,
        run_id: str,
        on_spawn: Callable[[Proc, str], None],
        event: Callable[[str, str, str], None] = lambda _kind, _reason, _message: None,
    ) -> None:
        self.pod, self.plan, self.ip, self.host_ip = pod, plan, ip, host_ip
        self.pod_dir, self.claims_dir, self.project_root = pod_dir, claims_dir, project_root
        self.cgroups, self.run_id, self.on_spawn = cgroups, run_id, on_spawn
        self.event = event  # (Normal|Warning, reason, message): an Event about this pod
        self.start_wall = time.time()
        self.inits = [ContainerRun(c, plan.images[c.name], init=True) for c in plan.inits]
        self.containers = [ContainerRun(c, plan.images[c.name]) for c in plan.containers]
        self.probes: dict[tuple[str, str], Future[str]] = {}  # -> why it failed, "" if not
        self.mounts: dict[str, Path] | None = None
        self.terminating = False
        self.terminated = threading.Event()
        self.frozen = False  # its node failed: nothing runs, nothing is reported
        self.services: dict[str, tuple[str, dict[int, int]]] = {}
        self.service_env: dict[str, str] = {}  # {SVC}_SERVICE_HOST, ... (envvars.py)
        self.transitions: dict[str, tuple[str, str]] = {}  # condition -> (status, since)
        pod_dir.mkdir(parents=True, exist_ok=True)
        pod_dir.chmod(0o755)
        # The pod's directory stands in for the image's writable filesystem: its user's.
        owner = next((ids for ids in plan.ids.values() if ids is not None), None)
        if owner is not None:
            os.chown(pod_dir, owner[0], owner[1])

    @property
    def key(self) -> tuple[str, str]:
        return self.plan.namespace, self.plan.name

    def runs(self) -> list[ContainerRun]:
        return self.inits + self.containers

    # -- running -----------------------------------------------------------------------------

    def sync(self, now: float, api: ApiLookups, pool: ProbePool) -> None:
        """Advance the pod one step (called every sync period)."""
        if self.terminating or self.frozen:
            return
        for run in self.inits:
            if run.succeeded:
                continue
            self._advance(run, now, api, init=True)
            return
        for run in self.containers:
            self._advance(run, now, api, init=False)
            self._probe(run, now, pool)

    def _advance(self, run: ContainerRun, now: float, api: ApiLookups, init: bool) -> None:
        if run.running:
            return
        if run.done:
            return
        ended = run.reap(now)
        if ended is not None:
            self._release(run)
            run.last = ended
            policy = self.plan.restart_policy
            again = policy == "Always" and not init
            again = again or (policy in ("Always", "OnFailure") and ended.exit_code != 0)
            if not again:
                run.current_exit = ended
                return
            run.restarts += 1
            run.reset_probes()
            run.schedule_restart(now)
            run.waiting = ("CrashLoopBackOff", "")
            if run.waited > 0:
                p = self.plan
                self.event(
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {run.spec.name} in pod "
                    f"{p.name}_{p.namespace}({p.uid})",
                )
        if now >= run.next_start:
            self._start(run, now, api)

    def _start(self, run: ContainerRun, now: float, api: ApiLookups) -> None:
        spec = run.spec
        try:
            launcher = runtime_for(spec)
        except InputError as exc:
            pulled_before = run.waiting[0] in ("ErrImagePull", "ImagePullBackOff")
            run.schedule_restart(now)
            run.waiting = (
                ("ImagePullBackOff", f'Back-off pulling image "{run.image}"')
                if pulled_before
                else (
                    "ErrImagePull",
                    f'failed to pull image "{run.image}": {exc.problems[0].message}',
                )
            )
            if pulled_before:
                self.event("Normal", "BackOff", run.waiting[1])
            else:
                self.event("Warning", "Failed", f"Failed to pull image: {run.waiting[1]}")
            return
        try:
            raw = self._raw_container(spec.name)
            env = {**self.service_env, **resolve_env(self.pod, raw, api, self.ip, self.host_ip)}
            if self.mounts is None:
                volumes = volume_dirs(self.plan, self.pod_dir, self.claims_dir, api)
                self.mounts = {m: volumes[v] for m, v in spec.mounts.items() if v in volumes}
            mounts = {m: p for m, p in self.mounts.items()}
            for mount_path, volume in spec.mounts.items():
                if volume in self.plan.volumes and mount_path not in mounts:
                    mounts[mount_path] = self.pod_dir / "volumes" / volume
            pod_env = PodEnv(
                pod=self.plan.name,
                pod_dir=self.pod_dir,
                ports={p: p for c in self.plan.containers for p in c.ports.values()},
                mounts=mounts,
                services={n: ports for n, (_ip, ports) in self.services.items()},
                project_root=self.project_root,
                ip=self.ip,
                service_hosts={n: ip for n, (ip, _ports) in self.services.items()},
            )
            launch = launcher(with_env(spec, env), pod_env)
        except (ConfigError, PlatformError, OSError) as exc:
            if run.waiting != ("CreateContainerConfigError", str(exc)):
                self.event("Warning", "Failed", f"Error: {exc}")
            run.waiting = ("CreateContainerConfigError", str(exc))
            run.next_start = now + CONFIG_RETRY
            return
        procs: list[Path] = []
        if self.cgroups is not None and self.cgroups.usable:
            if run.cgroup is None:
                with contextlib.suppress(PlatformError):
                    run.cgroup = ContainerCgroup.create(
                        self.run_id,
                        f"{self.plan.namespace}_{self.plan.name}",
                        spec.name,
                        spec.resources.cpu_limit_m,
                        spec.resources.memory_limit,
                        self.cgroups,
                    )
            if run.cgroup is not None:
                procs = run.cgroup.procs_files
        log = self.pod_dir / f"{spec.name}.log"
        ids = self.plan.ids.get(spec.name)
        if ids is not None and not reachable(launch.argv[0], ids):
            # The harness's own programs (its virtualenv's Python) may sit where the image's
            # user cannot reach them (a pyenv under /root): said in the log, run as ourselves.
            with log.open("a") as out:
                out.write(
                    f"finchsim: user {ids[0]} cannot execute {launch.argv[0]}; "
                    "running as the kubelet's own user\n"
                )
            ids = None
        try:
            if launch.kind == "process":
                run.proc = spawn(
                    launch.argv,
                    env=launch.env,
                    cwd=launch.cwd,
                    log_path=log,
                    cgroup_procs=procs,
                    ids=ids,
                    death_signal=launch.death_signal,
                )
            else:
                run.proc = start_server(launch, pod_env, procs)
        except (OSError, KeyError, PlatformError) as exc:
            run.waiting = ("CreateContainerError", str(exc))
            self.event("Warning", "Failed", f"Error: {exc}")
            run.schedule_restart(now)
            return
        run.started_wall, run.started_mono = time.time(), now
        run.launch, run.ids = launch, ids
        run.container_id = f"finchsim://{run.proc.pid}"
        run.waiting = ("", "")
        self.event("Normal", "Started", f"Started container {spec.name}")
        self.on_spawn(run.proc, f"{self.plan.namespace}/{self.plan.name}/{spec.name}")

    def _raw_container(self, name: str) -> dict[str, Any]:
        spec = self.pod["spec"]
        for c in (spec.get("initContainers") or []) + spec["containers"]:
            if c["name"] == name:
                return dict(c)
        raise ConfigError(f"container {name} not in the pod")

    def _release(self, run: ContainerRun) -> None:
        pass  # the process group is gone; its cgroup is kept for the restart

    # -- probes ------------------------------------------------------------------------------

    def _probe(self, run: ContainerRun, now: float, pool: ProbePool) -> None:
        if not run.running:
            return
        for kind in ("startup", "liveness", "readiness"):
            probe: Probe | None = getattr(run.spec, kind)
            if probe is None or (kind != "startup" and not run.started):
                continue
            if kind == "startup" and run.startup.passed:
                continue
            state: Probing = getattr(run, kind)
            key = (run.spec.name, kind)
            pending = self.probes.get(key)
            if pending is not None:
                if not pending.done():
                    continue
                del self.probes[key]
                self._judge(run, kind, probe, state, pending.result(), now)
                continue
            if now - run.started_mono < probe.initial_delay:
                continue
            if now - state.last_run >= probe.period:
                state.last_run = now
                self.probes[key] = pool.submit(self.ip, run.spec, probe)

    def _judge(
        self, run: ContainerRun, kind: str, probe: Probe, state: Probing, failed: str, now: float
    ) -> None:
        """`failed`: why the probe failed ("" when it passed)."""
        if not failed:
            state.successes, state.failures = state.successes + 1, 0
            if state.successes >= probe.success_threshold:
                state.passed = True
            return
        state.failures, state.successes = state.failures + 1, 0
        if state.failures < probe.failure_threshold:
            return
        self.event("Warning", "Unhealthy", f"{kind.capitalize()} probe failed: {failed}")
        if kind == "readiness":
            state.passed = False
        elif run.proc is not None:  # liveness/startup failed: the kubelet kills the container
            self.event(
                "Normal",
                "Killing",
                f"Container {run.spec.name} failed {kind} probe, will be restarted",
            )
            run.proc.terminate(min(self.plan.grace, 5), leader_only=True)

    # -- stopping ----------------------------------------------------------------------------

    def terminate(self, grace: float) -> None:
        """Stop every container (SIGTERM to each leader, SIGKILL after `grace`) in a thread;
        `terminated` is set when all are gone."""
        self.terminating = True
        for run in self.runs():
            if run.proc is not None:
                self.event("Normal", "Killing", f"Stopping container {run.spec.name}")

        def stop() -> None:
            threads = []
            for run in self.runs():
                proc = run.proc
                if proc is not None:
                    t = threading.Thread(target=proc.terminate, args=(grace, True), daemon=True)
                    t.start()
                    threads.append(t)
            for t in threads:
                t.join()
            self.terminated.set()

        threading.Thread(target=stop, name=f"stop-{self.plan.name}", daemon=True).start()

    def kill(self) -> None:
        """The node died: every process at once, no grace."""
        self.frozen = True
        for run in self.runs():
            if run.proc is not None:
                run.proc.kill()
                run.proc = None

    def destroy(self) -> None:
        for run in self.runs():
            if run.cgroup is not None:
                with contextlib.suppress(Exception):
                    run.cgroup.destroy()
                run.cgroup = None

    # -- status ------------------------------------------------------------------------------

    def phase(self) -> str:
        policy = self.plan.restart_policy
        if any(r.done and not r.succeeded for r in self.inits):
            return "Failed"
        if not all(r.succeeded for r in self.inits):
            return "Pending"
        if self.containers and all(r.done for r in self.containers):
            return "Succeeded" if all(r.succeeded for r in self.containers) else "Failed"
        if policy != "Always" and all(r.done or r.running for r in self.containers):
            return "Running"
        if any(r.running or r.restarts or r.done for r in self.containers):
            return "Running"
        return "Pending"

    def status(self, now: float) -> dict[str, Any]:
        ns, name, uid = self.plan.namespace, self.plan.name, self.plan.uid
        initialized = all(r.succeeded for r in self.inits)
        ready = initialized and all(r.ready for r in self.containers)
        at = rfc3339(self.start_wall)

        def cond(kind: str, ok: bool, reason: str = "") -> dict[str, Any]:
            value = "True" if ok else "False"
            seen = self.transitions.get(kind)
            if seen is None or seen[0] != value:
                seen = self.transitions[kind] = (value, rfc3339(time.time()))
            # Explicit nulls: the status is a strategic merge patch, a left-out key would stay.
            return {
                "type": kind,
                "status": value,
                "lastTransitionTime": seen[1],
                "reason": None if ok or not reason else reason,
                "message": None,
            }

        unready = [r.spec.name for r in self.containers if not r.ready]
        reason = "ContainersNotReady"
        phase = self.phase()
        if phase == "Succeeded" or (phase == "Failed" and initialized):
            reason = "PodCompleted"
        status: dict[str, Any] = {
            "phase": phase,
            "hostIP": self.host_ip,
            "hostIPs": [{"ip": self.host_ip}],
            "podIP": self.ip,
            "podIPs": [{"ip": self.ip}],
            "startTime": at,
            "conditions": [
                cond("PodReadyToStartContainers", True),
                cond("Initialized", initialized, "ContainersNotInitialized"),
                cond("ContainersReady", ready, reason),
                cond("Ready", ready, reason),
                cond("PodScheduled", True),
            ],
            "containerStatuses": [r.status(name, ns, uid, now) for r in self.containers],
        }
        if not ready and unready:
            for c in status["conditions"][2:4]:
                c["message"] = f"containers with unready status: [{' '.join(unready)}]"
        if self.inits:
            status["initContainerStatuses"] = [r.status(name, ns, uid, now) for r in self.inits]
        return status
