"""`LocalPlatform`: the Finch topology as real processes on this machine, no Docker.

Everything lives under one run directory (`/tmp/finchsim-<run id>/`, so the `postgres` OS user
can reach its data) recorded in `<project>/.finchsim/current.json` with the controller's pid: a
second `up` while one runs is refused, and `down` from anywhere stops it and then kills whatever
a crash left behind (recorded process groups, cgroups, the run directory)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from finchsim.errors import CommandError, PlatformError
from finchsim.platform import runstate
from finchsim.platform.base import (
    Capability,
    ComponentState,
    ContainerState,
    EventRecord,
    HpaStatus,
    JobResult,
    NodeState,
    Platform,
    PodState,
)
from finchsim.platform.local import cgroups as cg
from finchsim.platform.local.controller import Controller
from finchsim.platform.local.ingress import (
    NGINX_WORKER_USER,
    ControllerSettings,
    endpoint_pairs,
    plan_servers,
    render_config,
    upstream_name,
)
from finchsim.platform.local.metrics import serve
from finchsim.platform.local.monitoring import LocalMonitoring
from finchsim.platform.local.observe import snapshot
from finchsim.platform.local.processes import ProcessRegistry, spawn
from finchsim.platform.local.runtimes import runtime_for
from finchsim.platform.local.settings import LocalPlatformSettings, load_settings
from finchsim.platform.local.snapshot import Snapshot
from finchsim.platform.local.supervisor import Supervised
from finchsim.platform.local.traffic import IngressTraffic
from finchsim.platform.local.unready import unready_reasons
from finchsim.platform.manifests import render
from finchsim.platform.ports import free_port
from finchsim.platform.secrets import write_private
from finchsim.platform.topology import build_topology
from finchsim.project import Project

# The pod's terminationGracePeriodSeconds default (core/v1 defaults.go).
DEFAULT_GRACE_PERIOD = 30
OWNER_KIND = {"ReplicaSet": "Deployment"}  # the local platform has no ReplicaSet objects


class LocalPlatform(Platform):
    """Transitional: emulates the controllers in Python until it moves onto the real control
    plane. Without an API server it has no Events, no kubeconfig, and cannot kill one
    container alone; those are refused, not faked."""

    name = "local"
    capabilities = frozenset(
        {
            Capability.PROCESSES,
            Capability.NODE_FAILURE,
            Capability.DRAIN,
            Capability.JOBS,
            Capability.INGRESS,
            Capability.PROMETHEUS,
            Capability.EXEC,
        }
    )

    def __init__(
        self,
        project: Project,
        overlay: str = "production",
        settings: LocalPlatformSettings | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.project = project
        self.overlay = overlay
        self.settings = settings or load_settings(
            project.cluster / "local" / "platform.yaml", "cluster/local/platform.yaml"
        )
        self.log = log or (lambda _msg: None)
        self.run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
        self.run_dir = Path(f"/tmp/finchsim-{self.run_id}")
        self.controller: Controller | None = None
        self.ingress: Supervised | None = None
        self.monitoring: LocalMonitoring | None = None
        self.traffic: IngressTraffic | None = None
        self.registry: ProcessRegistry | None = None
        self.ports: dict[str, int] = {}
        self.snapshot_value = Snapshot(time.time())
        self._metrics_server: object | None = None
        self._upstreams: dict[str, list[tuple[str, int]]] = {}
        self.cgroup_support: cg.CgroupSupport | None = None

    # -- up / down ---------------------------------------------------------------------------

    def up(self, timeout: float = 300.0, on_tick: Callable[[], None] | None = None) -> None:
        _refuse_second_run(self.project)
        topology = build_topology(render(self.project, self.overlay))
        self.run_dir.mkdir(mode=0o755, parents=True)
        self._write_state()
        try:
            self.registry = ProcessRegistry(self.run_dir)
            support = cg.detect() if self.settings.enforceLimits else None
            if support is not None and not support.usable:
                self.log(f"cgroup limits not enforced, measuring only: {support.reason}")
            self.cgroup_support = support if support and support.usable else None
            self.controller = Controller(
                topology,
                self.settings,
                self.run_dir,
                self.run_id,
                self.project.root,
                self.cgroup_support,
                self.log,
                self.registry.register,
            )
            self.ports = {
                name: free_port()
                for name in (
                    "http",
                    "https",
                    "metrics",
                    "prometheus",
                    "alertmanager",
                    "node-exporter",
                )
            }
            self._start_metrics()
            self._start_ingress()
            self.monitoring = LocalMonitoring(
                self.run_dir,
                self.project.cluster / "monitoring",
                self.ports,
                self.settings.timings.scrapeInterval,
                self.registry.register,
                self.log,
            )
            self.monitoring.start()
            self._write_state()
            deadline = time.monotonic() + timeout
            while not self.all_ready():
                if time.monotonic() > deadline:
                    raise PlatformError(
                        f"the topology was not ready after {timeout:.0f}s: "
                        + self._not_ready_summary()
                    )
                self.step()
                if on_tick:
                    on_tick()
                time.sleep(0.2)
        except BaseException:
            self.down()
            raise

    def step(self) -> None:
        """One reconcile round; the caller loops on it while the platform runs."""
        assert self.controller is not None
        self.controller.tick()
        self.controller.sample()
        self._refresh()
        self._sync_ingress()
        assert self.monitoring is not None
        self.monitoring.write_targets(
            self.controller.pods.values(), self.controller.topology.namespace
        )
        if self.ingress is not None:
            self.ingress.check()
        self.monitoring.check()

    def down(self) -> None:
        if self.controller is not None:
            self.controller.shutdown()
            self.controller = None
        if self.ingress is not None:
            self.ingress.stop()
            self.ingress = None
        self.traffic = None
        if self.monitoring is not None:
            self.monitoring.stop()
            self.monitoring = None
        if self._metrics_server is not None:
            self._metrics_server.shutdown()  # type: ignore[attr-defined]
            self._metrics_server.server_close()  # type: ignore[attr-defined]
            self._metrics_server = None
        cleanup_run(self.project, self.run_dir, self.run_id)

    # -- parts -------------------------------------------------------------------------------

    def _start_metrics(self) -> None:
        server = serve(lambda: self.snapshot_value, self.ports["metrics"])
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
        self._metrics_server = server

    def _ingress_config(self) -> str:
        assert self.controller is not None
        topo = self.controller.topology
        auth_files = {}
        for name, data in topo.config.items():
            if "auth" in data:
                path = self.run_dir / f"{name}.htpasswd"
                write_private(path, data["auth"], owner=NGINX_WORKER_USER)
                auth_files[name] = str(path)
        servers, rate_limits = plan_servers(
            list(topo.ingresses.values()), auth_files, topo.namespace
        )
        settings = ControllerSettings.from_configmap(
            topo.config.get("ingress-nginx-controller", {})
        )
        upstreams = self._ingress_upstreams()
        self._upstreams = upstreams
        ingress_dir = self.run_dir / "ingress"
        return render_config(
            servers=servers,
            rate_limits=rate_limits,
            upstreams=upstreams,
            settings=settings,
            http_port=self.ports["http"],
            https_port=self.ports["https"],
            run_dir=ingress_dir,
            cert=ingress_dir / "tls.crt",
            key=ingress_dir / "tls.key",
        )

    def _ingress_upstreams(self) -> dict[str, list[tuple[str, int]]]:
        """Each Ingress backend's ready endpoints as (ip, port): here 127.0.0.1:<host port>."""
        assert self.controller is not None
        return {
            upstream_name(r.service, r.port): endpoint_pairs(self.controller.endpoints(r.service))
            for ing in self.controller.topology.ingresses.values()
            for r in ing.rules
        }

    def _start_ingress(self) -> None:
        ingress_dir = self.run_dir / "ingress"
        ingress_dir.mkdir()
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=finch.example.com",
                "-keyout",
                str(ingress_dir / "tls.key"),
                "-out",
                str(ingress_dir / "tls.crt"),
            ],
            check=True,
            capture_output=True,
        )
        (ingress_dir / "nginx.conf").write_text(self._ingress_config())
        assert self.controller is not None
        topo = self.controller.topology
        limit_status = ControllerSettings.from_configmap(
            topo.config.get("ingress-nginx-controller", {})
        ).limit_req_status_code
        self.traffic = IngressTraffic(ingress_dir / "access.log", topo.namespace, limit_status)
        assert self.registry is not None
        self.ingress = Supervised(
            "ingress",
            lambda: spawn(
                ["nginx", "-c", str(ingress_dir / "nginx.conf"), "-p", str(ingress_dir)],
                env={"PATH": "/usr/sbin:/usr/bin"},
                cwd=ingress_dir,
                log_path=ingress_dir / "nginx.out",
            ),
            self.log,
            self.registry.register,
        )

    def _sync_ingress(self) -> None:
        """Rewrite the upstreams when the set of ready endpoints changed; nginx reloads on HUP."""
        current = self._ingress_upstreams()
        if current == self._upstreams or self.ingress is None:
            return
        (self.run_dir / "ingress" / "nginx.conf").write_text(self._ingress_config())
        if self.ingress.alive():  # a restarted one reads the new file anyway
            os.kill(self.ingress.proc.pid, signal.SIGHUP)

    def _write_state(self) -> None:
        runstate.record_run(
            self.project,
            self.run_id,
            self.run_dir,
            self.name,
            self.overlay,
            ports=self.ports,
            ingress=f"https://127.0.0.1:{self.ports.get('https', 0)}",
            prometheus=f"http://127.0.0.1:{self.ports.get('prometheus', 0)}",
            alertmanager=f"http://127.0.0.1:{self.ports.get('alertmanager', 0)}",
        )

    # -- queries -----------------------------------------------------------------------------

    def all_ready(self) -> bool:
        snap = self.snapshot_value
        return bool(snap.workloads) and all(w.ready >= w.desired for w in snap.workloads)

    def _not_ready_summary(self) -> str:
        """The unready workloads on the first line, then one reason per unready pod."""
        parts = [
            f"{w.name} {w.ready}/{w.desired} ready"
            for w in self.snapshot_value.workloads
            if w.ready < w.desired
        ]
        ctl = self._running()
        reasons = unready_reasons(list(ctl.pods.values()), ctl.pending)
        return "; ".join(parts) + "".join(f"\n  {reason}" for reason in reasons)

    def components(self) -> list[ComponentState]:
        return [
            ComponentState(w.kind, w.namespace, w.name, w.desired, w.ready, w.available, w.updated)
            for w in self.snapshot_value.workloads
        ]

    def pods(self) -> list[PodState]:
        ctl = self.controller
        live = ctl.pods if ctl is not None else {}
        states = []
        for p in self.snapshot_value.pods:
            pod = live.get(p.name)
            containers = tuple(
                ContainerState(
                    c.name,
                    p.ready,
                    c.restarts,
                    "Running" if c.running else "Waiting",
                )
                for c in p.containers
            )
            states.append(
                PodState(
                    namespace=p.namespace,
                    name=p.name,
                    uid=pod.uid if pod is not None else "",
                    owner_kind=OWNER_KIND.get(p.owner_kind, p.owner_kind),
                    owner=p.owner,
                    node=p.node,
                    phase=p.phase,
                    ready=p.ready,
                    created=p.created,
                    labels=dict(pod.workload.labels) if pod is not None else {},
                    containers=containers,
                    deleting=pod.deleting if pod is not None else False,
                    reason=p.reason,
                )
            )
        return states

    def hpas(self) -> list[HpaStatus]:
        return [
            HpaStatus(
                h.namespace,
                h.name,
                h.target,
                h.min_replicas,
                h.max_replicas,
                h.current,
                h.desired,
                dict(h.targets),
                dict(h.utilization),
            )
            for h in self.snapshot_value.hpas
        ]

    def nodes(self) -> list[NodeState]:
        return list(self.snapshot_value.nodes)

    def _running(self) -> Controller:
        if self.controller is None:
            raise PlatformError("the local platform is not up")
        return self.controller

    def _workload(self, name: str) -> str:
        known = self._running().replicas
        if name not in known:
            raise PlatformError(f"no workload {name!r}; have: " + ", ".join(sorted(known)))
        return name

    def _refresh(self) -> None:
        """A new snapshot; actions call it too, so their effect is visible to the queries at
        once, not only after the next step."""
        snap = snapshot(self._running())
        if self.traffic is not None:
            self.traffic.read()
            snap = replace(snap, ingress=self.traffic.totals(), ingress_rates=self.traffic.rates())
        self.snapshot_value = snap

    def _in_namespace(self, namespace: str) -> None:
        ns = self._running().topology.namespace
        if namespace != ns:
            raise PlatformError(f"no namespace {namespace!r} on the local platform; it runs {ns!r}")

    def scale(self, namespace: str, name: str, replicas: int) -> None:
        self._in_namespace(namespace)
        self._running().replicas[self._workload(name)] = replicas
        self._refresh()

    def rollout(self, namespace: str, name: str) -> None:
        self._in_namespace(namespace)
        self._running().rollout(self._workload(name))
        self._refresh()

    def delete_pod(self, namespace: str, name: str, grace_period: int | None = None) -> None:
        self._in_namespace(namespace)
        ctl = self._running()
        if name not in ctl.pods:
            raise PlatformError(f"no pod {namespace}/{name}")
        if grace_period == 0:
            ctl.pods[name].kill()
        else:
            ctl.delete_pod(name, DEFAULT_GRACE_PERIOD if grace_period is None else grace_period)
        self._refresh()

    def kill_container(self, namespace: str, pod: str, container: str) -> None:
        self.require(Capability.KILL_CONTAINER)

    def events(self, since: float) -> list[EventRecord]:
        self.require(Capability.EVENTS)
        return []

    def poll(self) -> None:
        self.step()

    def fail_node(self, node: str) -> None:
        self._running().fail_node(node, time.monotonic())
        self._refresh()

    def recover_node(self, node: str) -> None:
        self._running().recover_node(node)
        self._refresh()

    def drain_node(self, node: str, timeout: float = 300.0) -> None:
        """`kubectl drain`: cordon, then evict each pod through the PDB check, retrying a
        refused eviction every 5 s (kubectl's interval) until the timeout."""
        ctl = self._running()
        ctl.node(node)
        ctl.set_schedulable(node, False)
        deadline = time.monotonic() + timeout
        retry_at: dict[str, float] = {}
        while True:
            left = [p for p in ctl.pods.values() if p.node == node and not p.deleting]
            if not left:
                return
            for pod in left:
                if time.monotonic() < retry_at.get(pod.name, 0.0):
                    continue
                blocker = ctl.eviction_blocked_by(pod.name)
                if blocker is None:
                    self.log(f"{pod.name}: evicted (drain {node})")
                    ctl.delete_pod(pod.name)
                else:
                    retry_at[pod.name] = time.monotonic() + 5.0
                    if time.monotonic() > deadline:
                        raise PlatformError(
                            f"drain {node}: cannot evict {pod.name} after "
                            f"{timeout:.0f}s: {blocker.explain()}"
                        )
            self.step()
            time.sleep(0.2)

    def uncordon_node(self, node: str) -> None:
        self._running().set_schedulable(node, True)
        self._refresh()

    def run_job(self, namespace: str, cronjob: str, timeout: float | None = None) -> JobResult:
        self._in_namespace(namespace)
        ctl = self._running()
        if cronjob not in ctl.topology.cronjobs:
            raise PlatformError(
                f"no CronJob {cronjob!r}; have: " + ", ".join(sorted(ctl.topology.cronjobs))
            )
        job = ctl.start_job(cronjob, time.monotonic())
        limit = timeout or job.cronjob.active_deadline or 3600.0
        while job.active:
            if time.monotonic() - job.started > limit:
                raise PlatformError(f"job {job.name} still running after {limit:.0f}s")
            self.step()
            time.sleep(0.2)
        assert job.finished is not None
        return JobResult(
            job.name, job.succeeded, job.finished - job.started, job.output, job.reason
        )

    def exec_command(
        self, namespace: str, workload: str, argv: Sequence[str], timeout: float = 300.0
    ) -> str:
        self._in_namespace(namespace)
        return self.exec_in(workload, list(argv), timeout)

    def exec_in(self, workload: str, argv: list[str], timeout: float = 300.0) -> str:
        """`kubectl exec` into the first container of a ready pod of `workload`: run `argv`
        with that container's environment and working directory; return its output."""
        ctl = self._running()
        pod = next((p for p in ctl.pods.values() if p.workload.name == workload and p.ready), None)
        if pod is None:
            raise PlatformError(f"no ready pod of {workload!r} to exec into")
        run = pod.containers[0]
        launch = runtime_for(run.spec)(run.spec, pod.env)
        argv = [
            str(Path(sys.executable).parent / argv[0])
            if (Path(sys.executable).parent / argv[0]).exists()
            else argv[0],
            *argv[1:],
        ]
        done = subprocess.run(
            argv,
            env=launch.env,
            cwd=launch.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise CommandError(argv, done.returncode, done.stdout + done.stderr)
        return done.stdout

    def ingress_url(self, host: str) -> str:
        return f"https://127.0.0.1:{self.ports['https']}"

    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['prometheus']}"

    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['alertmanager']}"


def _refuse_second_run(project: Project) -> None:
    left = runstate.refuse_if_running(project)
    if left is not None:  # left by a crash, of this platform or another
        from finchsim.platform.registry import cleanup

        cleanup(project, left)


def cleanup_run(project: Project, run_dir: Path, run_id: str) -> None:
    """Remove every trace of a run: recorded processes, cgroups, the run dir, the state file."""
    with contextlib.suppress(Exception):
        ProcessRegistry.kill_all_recorded(run_dir)
    with contextlib.suppress(Exception):
        cg.cleanup_run(run_id)
    shutil.rmtree(run_dir, ignore_errors=True)
    runstate.clear_state(project, run_id)
