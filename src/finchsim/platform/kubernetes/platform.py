"""`KubernetesPlatform`: the seam over the official kubernetes client, for any cluster.

Its provider makes the cluster exist (`kwok`, `context`, ...); everything else is the same on
every cluster: the rendered overlay is server-side applied (CRDs first), `up` waits until every
Deployment and StatefulSet is rolled out as `kubectl rollout status` would, and the actions go
through the API the way kubectl does them. The real controllers do the rest."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from kubernetes.client.exceptions import ApiException

from finchsim.errors import InputError, PlatformError
from finchsim.models.load import LoadModel
from finchsim.platform import runstate
from finchsim.platform.base import (
    Capability,
    ComponentState,
    EventRecord,
    HpaStatus,
    JobResult,
    NodeState,
    Platform,
    PodState,
)
from finchsim.platform.kubernetes import drain, jobs, rollout, states
from finchsim.platform.kubernetes.apply import apply_objects
from finchsim.platform.kubernetes.client import Clients, api_message
from finchsim.platform.kubernetes.provider import Provider
from finchsim.platform.kubernetes.usage import write_usage
from finchsim.platform.manifests import Rendered
from finchsim.project import Project


class KubernetesPlatform(Platform):
    def __init__(
        self,
        project: Project,
        overlay: str,
        provider: Provider,
        objects: list[Rendered],
        *,
        load_model: LoadModel | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        """`objects`: the rendered overlay (and CRDs, monitoring) to apply, validated."""
        self.project = project
        self.overlay = overlay
        self.provider = provider
        self.name = provider.name
        self.capabilities = provider.capabilities
        self.objects = objects
        self.namespaces = sorted(
            {o.namespace for o in objects if o.namespace}
            | {o.name for o in objects if o.kind == "Namespace"}
        )
        self.load_model = load_model
        self.offered: dict[str, float] = {}
        self.log = log or (lambda _msg: None)
        self.run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
        self.run_dir = Path(f"/tmp/finchsim-{self.run_id}")
        self.clients: Clients | None = None
        self._kubeconfig: Path | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def _record(self) -> None:
        runstate.record_run(
            self.project,
            self.run_id,
            self.run_dir,
            self.name,
            self.overlay,
            kubeconfig=str(self._kubeconfig) if self._kubeconfig else None,
            provider=self.provider.state() if self._kubeconfig else None,
        )

    def up(self, timeout: float = 300.0) -> None:
        left = runstate.refuse_if_running(self.project)
        if left is not None:
            from finchsim.platform.registry import cleanup  # the registry knows every platform

            cleanup(self.project, left)
        self.run_dir.mkdir(mode=0o700, parents=True)
        self._record()
        try:
            self._kubeconfig = self.provider.create(self.run_dir, self.log)
            self._record()
            self.clients = Clients.connect(
                self._kubeconfig, self.run_dir / "discovery.json", self.provider.context()
            )
            self.provider.prepare(self.clients, self.namespaces)
            self._record()  # what prepare made (namespaces, nodes) is in the provider's state
            problems = apply_objects(self.clients, self.objects)
            if problems:
                raise InputError(problems)
            self.log(f"applied {len(self.objects)} objects; waiting for the rollouts")
            rollout.wait_rolled_out(self.clients, self.namespaces, timeout, poll=self.poll)
            self.provider.settle(self.clients)
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        with contextlib.suppress(Exception):
            self.provider.delete(self.clients)
        if self.clients is not None:
            self.clients.close()
            self.clients = None
        shutil.rmtree(self.run_dir, ignore_errors=True)
        runstate.clear_state(self.project, self.run_id)

    def poll(self) -> None:
        api = self._api()
        dead = self.provider.dead()  # first: it may bring back the API server reconcile needs
        if dead is not None:
            raise PlatformError(dead)
        self.provider.reconcile(api)
        if self.load_model is not None and Capability.SIMULATED_LOAD in self.capabilities:
            write_usage(api, self.load_model, self.namespaces, self.offered)

    def _api(self) -> Clients:
        if self.clients is None:
            raise PlatformError(f"the {self.name} platform is not up")
        return self.clients

    # -- queries ---------------------------------------------------------------------------

    def components(self) -> list[ComponentState]:
        api = self._api()
        found = []
        for ns in self.namespaces:
            deployments = api.apps.list_namespaced_deployment(ns).items
            statefulsets = api.apps.list_namespaced_stateful_set(ns).items
            found += [states.workload_state("Deployment", d) for d in deployments]
            found += [states.workload_state("StatefulSet", s) for s in statefulsets]
        return found

    def pods(self) -> list[PodState]:
        api = self._api()
        return [
            states.pod_state(p)
            for ns in self.namespaces
            for p in api.core.list_namespaced_pod(ns).items
        ]

    def nodes(self) -> list[NodeState]:
        return [states.node_state(n) for n in self._api().core.list_node().items]

    def hpas(self) -> list[HpaStatus]:
        api = self._api()
        found = []
        for ns in self.namespaces:
            for h in api.autoscaling.list_namespaced_horizontal_pod_autoscaler(ns).items:
                targets, measured = {}, {}
                for m in h.spec.metrics or []:
                    if m.type == "Resource" and m.resource.target.average_utilization is not None:
                        targets[m.resource.name] = int(m.resource.target.average_utilization)
                for m in h.status.current_metrics or []:
                    if m.type == "Resource" and m.resource.current.average_utilization is not None:
                        measured[m.resource.name] = float(m.resource.current.average_utilization)
                found.append(
                    HpaStatus(
                        ns,
                        h.metadata.name,
                        h.spec.scale_target_ref.name,
                        h.spec.min_replicas or 1,
                        h.spec.max_replicas,
                        h.status.current_replicas or 0,
                        h.status.desired_replicas or 0,
                        targets,
                        measured,
                    )
                )
        return found

    def events(self, since: float) -> list[EventRecord]:
        api = self._api()
        found = []
        for ns in [*self.namespaces, "default"]:  # Node events are recorded in "default"
            raw = api.events.list_namespaced_event(ns, _preload_content=False)
            for e in json.loads(raw.data)["items"]:
                record = states.event_record(e)
                if record.time >= since:
                    found.append(record)
        return sorted(found, key=lambda r: r.time)

    # -- actions ---------------------------------------------------------------------------

    def _workload_kind(self, namespace: str, name: str) -> str:
        api = self._api()
        for kind, read in (
            ("Deployment", api.apps.read_namespaced_deployment),
            ("StatefulSet", api.apps.read_namespaced_stateful_set),
        ):
            try:
                read(name, namespace)
                return kind
            except ApiException as exc:
                if exc.status != 404:
                    raise PlatformError(f"{namespace}/{name}: {api_message(exc)}") from exc
        known = sorted(f"{c.namespace}/{c.name}" for c in self.components())
        raise PlatformError(f"no workload {namespace}/{name}; have: {', '.join(known)}")

    def scale(self, namespace: str, name: str, replicas: int) -> None:
        api = self._api()
        kind = self._workload_kind(namespace, name)
        patch = {"spec": {"replicas": replicas}}
        if kind == "Deployment":
            api.apps.patch_namespaced_deployment_scale(name, namespace, patch)
        else:
            api.apps.patch_namespaced_stateful_set_scale(name, namespace, patch)

    def rollout(self, namespace: str, name: str) -> None:
        api = self._api()
        kind = self._workload_kind(namespace, name)
        # `kubectl rollout restart`: a new template annotation makes a new revision.
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        patch = {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}
                }
            }
        }
        if kind == "Deployment":
            api.apps.patch_namespaced_deployment(name, namespace, patch)
        else:
            api.apps.patch_namespaced_stateful_set(name, namespace, patch)

    def delete_pod(self, namespace: str, name: str, grace_period: int | None = None) -> None:
        try:
            self._api().core.delete_namespaced_pod(
                name, namespace, grace_period_seconds=grace_period
            )
        except ApiException as exc:
            raise PlatformError(f"delete pod {namespace}/{name}: {api_message(exc)}") from exc

    def kill_container(self, namespace: str, pod: str, container: str) -> None:
        self.require(Capability.KILL_CONTAINER)
        self.provider.kill_container(self._api(), namespace, pod, container)

    def fail_node(self, node: str) -> None:
        self.require(Capability.NODE_FAILURE)
        self.provider.fail_node(self._api(), node)
        self.log(f"{node}: failed (kubelet stopped)")

    def recover_node(self, node: str) -> None:
        self.require(Capability.NODE_FAILURE)
        self.provider.recover_node(self._api(), node)
        self.log(f"{node}: recovered")

    def drain_node(self, node: str, timeout: float = 300.0) -> None:
        self.require(Capability.DRAIN)
        drain.drain(self._api(), node, timeout, self.log, self.poll)

    def uncordon_node(self, node: str) -> None:
        drain.cordon(self._api(), node, unschedulable=False)

    def run_job(self, namespace: str, cronjob: str, timeout: float | None = None) -> JobResult:
        self.require(Capability.JOBS)
        return jobs.run_job(self._api(), namespace, cronjob, timeout, self.poll)

    def exec_command(
        self, namespace: str, workload: str, argv: Sequence[str], timeout: float = 300.0
    ) -> str:
        self.require(Capability.EXEC)
        ready = [
            p
            for p in self.pods()
            if p.namespace == namespace and p.owner == workload and p.ready and not p.deleting
        ]
        if not ready:
            raise PlatformError(f"no ready pod of {namespace}/{workload} to exec into")
        return self.provider.exec_command(self._api(), namespace, ready[0].name, argv, timeout)

    def offer_load(self, requests_per_second: Mapping[str, float]) -> None:
        self.require(Capability.SIMULATED_LOAD)
        if self.load_model is None:
            raise PlatformError("no load model loaded (analysis/load-model.yaml)")
        self.offered = dict(requests_per_second)
        write_usage(self._api(), self.load_model, self.namespaces, self.offered)

    # -- endpoints -------------------------------------------------------------------------

    def ingress_url(self, host: str) -> str:
        self.require(Capability.INGRESS)
        return self.provider.ingress_url(host)

    def prometheus_url(self) -> str:
        self.require(Capability.PROMETHEUS)
        return self.provider.prometheus_url()

    def kubeconfig(self) -> Path:
        if self._kubeconfig is None:
            raise PlatformError(f"the {self.name} platform is not up")
        return self._kubeconfig
