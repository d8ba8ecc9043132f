"""finch's kubelet: the virtual nodes of `cluster/local/platform.yaml` registered with a real
API server, and the pods bound to them run as real processes on this machine.

It runs as threads of the platform process: one sync thread (heartbeats, the pods' lifecycle,
status), one TLS metrics server per node, a small probe pool, and a stopping thread per pod
being deleted. The sync thread is the only one that starts processes: `spawn` ties each child's
life to the thread that forked it (PR_SET_PDEATHSIG), so it must be a thread that lives as long
as the kubelet. Every process group is recorded with its start time in
`<run_dir>/kubelet/processes.json` so a crash can be cleaned up by `finchsim down`."""

from __future__ import annotations

import functools
import json
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes.client import V1DeleteOptions, V1Preconditions
from kubernetes.client.exceptions import ApiException

from finchsim.errors import PlatformError
from finchsim.platform.kubelet.addresses import PodIPs, node_ip
from finchsim.platform.kubelet.container import ContainerRun
from finchsim.platform.kubelet.envvars import pod_service_env, service_links
from finchsim.platform.kubelet.events import EventRecorder
from finchsim.platform.kubelet.exec import exec_in, kill_container
from finchsim.platform.kubelet.metrics import MetricsServer
from finchsim.platform.kubelet.node import NodeAgent, NodeSpec
from finchsim.platform.kubelet.pod import PodWorker
from finchsim.platform.kubelet.probes import ProbePool
from finchsim.platform.kubelet.spec import ApiLookups, plan
from finchsim.platform.kubelet.tls import serving_context
from finchsim.platform.kubelet.volumes import AGG_PERIOD, Claim, VolumeStatsCache, pod_claims
from finchsim.platform.kubernetes.client import Clients
from finchsim.platform.local import cgroups
from finchsim.platform.local.processes import Proc, ProcessRegistry
from finchsim.platform.local.settings import NodeGroup
from finchsim.platform.network.endpoints import as_dict, service_ip

SYNC_PERIOD = 0.5
SERVICES_EVERY = 2.0


@dataclass(frozen=True)
class KubeletConfig:
    nodes: NodeGroup
    run_dir: Path  # the kubelet's own directory
    run_id: str  # names the cgroups
    project_root: Path
    lease_seconds: int = 40
    status_every: float = 10.0
    enforce_limits: bool = True
    volume_stats_period: float = AGG_PERIOD  # --volume-stats-agg-period

    def node_specs(self, ports: list[int]) -> list[NodeSpec]:
        g = self.nodes
        return [
            NodeSpec(
                f"finch-node-{i}", g.zones[i % len(g.zones)], g.cpu, g.memory, node_ip(i), ports[i]
            )
            for i in range(g.count)
        ]


class Kubelet:
    def __init__(self, clients: Clients, config: KubeletConfig, log: Callable[[str], None]) -> None:
        self.clients = clients
        self.config = config
        self.log = log
        self.ips = PodIPs()
        self.workers: dict[str, PodWorker] = {}  # pod uid -> worker
        self.agents: dict[str, NodeAgent] = {}
        self.servers: list[MetricsServer] = []
        self.pool = ProbePool()
        self.volume_stats = VolumeStatsCache(config.volume_stats_period)
        self.events = EventRecorder(clients)
        self.registry = ProcessRegistry(config.run_dir)
        self.support = cgroups.detect() if config.enforce_limits else None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.failure: str | None = None
        self.services: dict[str, dict[str, tuple[str, dict[int, int]]]] = {}
        self.service_links: dict[str, dict[str, str]] = {}  # envvars.service_links
        self._services_at = 0.0
        self._sent: dict[str, Any] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> list[str]:
        """Start the metrics servers, register the nodes, start the sync thread; return the
        node names."""
        cfg = self.config
        cfg.run_dir.mkdir(mode=0o711, parents=True, exist_ok=True)
        if self.support is not None and not self.support.usable:
            self.log(f"kubelet: no cgroup limits ({self.support.reason}); usage is measured only")
        addresses = [node_ip(i) for i in range(cfg.nodes.count)]
        context = serving_context(cfg.run_dir / "pki", addresses)
        for i, address in enumerate(addresses):
            name = f"finch-node-{i}"
            runs = functools.partial(self._runs_on, name)
            volumes = functools.partial(self._volume_metrics, name)
            server = MetricsServer(address, context, runs, cfg.nodes.count, volumes, self._log_file)
            server.start()
            self.servers.append(server)
        specs = cfg.node_specs([s.port for s in self.servers])
        for spec in specs:
            agent = NodeAgent(self.clients, spec, cfg.lease_seconds)
            agent.register()
            self.agents[spec.name] = agent
        self.thread = threading.Thread(target=self._loop, name="kubelet-sync", daemon=True)
        self.thread.start()
        return [s.name for s in specs]

    def stop(self) -> None:
        """Stop syncing, kill every container, remove the cgroups; idempotent."""
        self._stop.set()
        if self.thread is not None:
            self.thread.join(timeout=30)
        with self._lock:
            for worker in self.workers.values():
                worker.kill()
                worker.destroy()
            self.workers.clear()
        for server in self.servers:
            server.stop()
        self.servers.clear()
        self.pool.shutdown()
        self.events.stop()
        cleanup_kubelet(self.config.run_dir, self.config.run_id)

    def dead(self) -> str | None:
        if self.failure is not None:
            return self.failure
        if self.thread is not None and not self.thread.is_alive() and not self._stop.is_set():
            return "the kubelet's sync thread died"
        return None

    def _worker(self, namespace: str, pod: str) -> PodWorker:
        with self._lock:
            found = next((w for w in self.workers.values() if w.key == (namespace, pod)), None)
        if found is None:
            raise PlatformError(f"no pod {namespace}/{pod} runs on this kubelet")
        return found

    def _log_file(self, namespace: str, pod: str, container: str) -> Path | None:
        """The log of a container of a pod this kubelet runs (None: no such container)."""
        try:
            worker = self._worker(namespace, pod)
        except PlatformError:
            return None
        if container not in {r.spec.name for r in worker.runs()}:
            return None
        return worker.pod_dir / f"{container}.log"

    def exec(self, namespace: str, pod: str, argv: Sequence[str], timeout: float) -> str:
        """`kubectl exec` into the pod's first container (see `kubelet.exec`)."""
        return exec_in(self._worker(namespace, pod), argv, timeout)

    def kill_container(self, namespace: str, pod: str, container: str) -> None:
        """SIGKILL one container's processes; the sync loop restarts it with its back-off."""
        kill_container(self._worker(namespace, pod), container)

    def fail_node(self, node: str) -> None:
        """Stop heartbeating `node` and kill its pods' processes (a node crash)."""
        agent = self.agents[node]
        with self._lock:
            agent.alive = False
            for uid, worker in list(self.workers.items()):
                if worker.plan.node == node:
                    worker.kill()
                    worker.destroy()
                    del self.workers[uid]

    def recover_node(self, node: str) -> None:
        """Heartbeat `node` again; the pods still bound to it start afresh."""
        self.agents[node].revive()

    # -- the sync loop -----------------------------------------------------------------------

    def _loop(self) -> None:
        errors = 0
        while not self._stop.is_set():
            try:
                with self._lock:
                    self._sync(time.monotonic())
                errors = 0
            except Exception:
                errors += 1
                if errors == 1 or errors % 20 == 0:
                    self.log("kubelet: sync failed: " + traceback.format_exc(limit=3).strip())
                if errors >= 120:
                    self.failure = "the kubelet could not reach the API server for a minute"
                    return
            self._stop.wait(SYNC_PERIOD)

    def _sync(self, now: float) -> None:
        for agent in self.agents.values():
            agent.tick(now, max(1.0, self.config.lease_seconds / 4), self.config.status_every)
        if now - self._services_at >= SERVICES_EVERY:
            self._refresh_services()
            self._services_at = now
        alive = {n for n, a in self.agents.items() if a.alive}
        resp = self.clients.core.list_pod_for_all_namespaces(
            field_selector="spec.nodeName!=", _preload_content=False
        )
        pods = [p for p in json.loads(resp.data)["items"] if p["spec"].get("nodeName") in alive]
        seen = set()
        for pod in pods:
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            worker = self.workers.get(uid)
            deleting = pod["metadata"].get("deletionTimestamp") is not None
            if worker is None:
                if deleting:
                    self._delete_object(pod)
                    continue
                if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                    continue
                worker = self._new_worker(pod)
            worker.pod = pod
            worker.services = self.services.get(worker.plan.namespace, {})
            worker.service_env = pod_service_env(pod, self.service_links)
            if deleting and not worker.terminating:
                grace = pod["metadata"].get("deletionGracePeriodSeconds")
                worker.terminate(float(worker.plan.grace if grace is None else grace))
            worker.sync(now, ApiLookups(self.clients, worker.plan.namespace), self.pool)
            if not worker.terminating:
                self._report(worker, now)
        for uid, worker in list(self.workers.items()):
            if uid not in seen and worker.plan.node in alive:
                worker.kill()  # deleted behind our back (force delete)
                worker.destroy()
                del self.workers[uid]
            elif worker.terminated.is_set():
                worker.destroy()
                self._delete_object(worker.pod)
                del self.workers[uid]
                self._sent.pop(uid, None)

    def _new_worker(self, pod: dict[str, Any]) -> PodWorker:
        p = plan(pod)
        host = self.agents[p.node].spec.ip
        worker = PodWorker(
            pod,
            p,
            self.ips.allocate(),
            host,
            self.config.run_dir / "pods" / p.uid,
            self.config.run_dir / "volumes",
            self.config.project_root,
            self.support,
            self.config.run_id,
            self._record,
            functools.partial(self._event, pod, p.node),
        )
        self.workers[p.uid] = worker
        return worker

    def _event(self, pod: dict[str, Any], node: str, kind: str, reason: str, text: str) -> None:
        self.events.record(pod, kind, reason, text, node)

    def _record(self, proc: Proc, label: str) -> None:
        self.registry.register(proc, label)

    def record_process(self, proc: Proc, label: str) -> None:
        """Record a helper process (the edge's nginx, Prometheus, ...) for crash cleanup."""
        with self._lock:
            self.registry.register(proc, label)

    def _report(self, worker: PodWorker, now: float) -> None:
        status = worker.status(now)
        uid = worker.plan.uid
        if self._sent.get(uid) == status:
            return
        try:
            self.clients.core.patch_namespaced_pod_status(
                worker.plan.name,
                worker.plan.namespace,
                {"status": status},
                # A JSON merge patch: the lists (conditions, container states) are replaced
                # whole, so nothing of an earlier state lingers as a strategic merge would.
                _content_type="application/merge-patch+json",
            )
            self._sent[uid] = status
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def _delete_object(self, pod: dict[str, Any]) -> None:
        """The containers are gone: remove the pod object at once, as a kubelet does."""
        meta = pod["metadata"]
        try:
            self.clients.core.delete_namespaced_pod(
                meta["name"],
                meta["namespace"],
                body=V1DeleteOptions(
                    grace_period_seconds=0, preconditions=V1Preconditions(uid=meta["uid"])
                ),
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

    def _refresh_services(self) -> None:
        found: dict[str, dict[str, tuple[str, dict[int, int]]]] = {}
        services = self.clients.core.list_service_for_all_namespaces().items
        self.service_links = service_links(as_dict(svc) for svc in services)
        for svc in services:
            ip = service_ip(as_dict(svc))  # a headless one: its stable address at the proxy
            if ip is None:
                continue
            ports = {p.port: p.port for p in svc.spec.ports or []}
            found.setdefault(svc.metadata.namespace, {})[svc.metadata.name] = (ip, ports)
        self.services = found

    def _runs_on(self, node: str) -> list[tuple[str, str, ContainerRun]]:
        """Every running container of `node`, for the metrics endpoint (a snapshot)."""
        out = []
        for worker in list(self.workers.values()):
            if worker.plan.node == node and not worker.frozen:
                for run in worker.containers:
                    if run.running:
                        out.append((worker.plan.namespace, worker.plan.name, run))
        return out

    def _volume_metrics(self, node: str) -> bytes:
        """`/metrics` of `node`: the volume stats of the claims its pods have mounted."""
        claims: list[Claim] = []
        for worker in list(self.workers.values()):
            if worker.plan.node == node and not worker.frozen and worker.mounts is not None:
                volumes = worker.plan.volumes.values()
                claims += pod_claims(worker.plan.namespace, volumes, worker.claims_dir)
        return self.volume_stats.exposition(claims)


def cleanup_kubelet(run_dir: Path, run_id: str) -> None:
    """After a crash too: kill the process groups recorded in `run_dir` that are still ours
    (pid with its start time) and remove the run's cgroups."""
    ProcessRegistry.kill_all_recorded(run_dir)
    cgroups.cleanup_run(run_id)
