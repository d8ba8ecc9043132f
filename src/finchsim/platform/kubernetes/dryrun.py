"""Kubernetes itself checks the rendered objects: a throwaway API server, server-side.

`kubectl apply --dry-run=server` semantics, on a control plane of our own (etcd and
kube-apiserver from the pinned cache, no controllers, nothing scheduled), so that quantities,
ranges, defaulting and admission are judged by the real code, not by our schemas:
1. the CRDs of `cluster/crds/`, then every object of each build target, are server-side
   applied (for real: with no controllers, stored objects do nothing, and the LimitRanges,
   ResourceQuotas and namespace labels must exist for the next step);
2. a Pod made from every pod template (Deployment, StatefulSet — with its claim templates as
   volumes — Job and CronJob) is created with `dryRun=All`, so Pod Security "restricted",
   LimitRange bounds and ResourceQuota are applied to it as they would be to the real pods.
Every refusal is one Problem naming the file the object came from."""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from finchsim.errors import Problem
from finchsim.platform.controlplane.kwokctl import (
    ControlPlaneTimings,
    KwokctlCluster,
    kwokctl_config,
)
from finchsim.platform.kubernetes.apply import apply_objects
from finchsim.platform.kubernetes.client import Clients, api_message
from finchsim.platform.manifests import Rendered


def pod_template(item: Rendered) -> dict[str, Any] | None:
    """The Pod a workload's controller would create, or None for a kind without pods."""
    spec = item.obj.get("spec") or {}
    if item.kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    elif item.kind not in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
        return None
    template = copy.deepcopy(spec.get("template") or {})
    pod_spec = template.get("spec") or {}
    if item.kind == "StatefulSet":
        volumes = pod_spec.setdefault("volumes", [])
        for claim in spec.get("volumeClaimTemplates") or []:
            name = claim["metadata"]["name"]
            volumes.append(
                {"name": name, "persistentVolumeClaim": {"claimName": f"{name}-{item.name}-0"}}
            )
    meta = template.get("metadata") or {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{item.name}-dry-run",
            "namespace": item.namespace,
            "labels": meta.get("labels") or {},
            "annotations": meta.get("annotations") or {},
        },
        "spec": pod_spec,
    }


def _default_service_accounts(clients: Clients, namespaces: set[str]) -> None:
    """What kube-controller-manager's serviceaccount controller would have made."""
    for ns in namespaces:
        try:
            clients.core.create_namespaced_service_account(ns, {"metadata": {"name": "default"}})
        except ApiException as exc:
            if exc.status != 409:
                raise


def _check_one(
    binaries: Mapping[str, Path], crds: list[Rendered], objects: list[Rendered], name: str
) -> list[Problem]:
    problems: list[Problem] = []
    with tempfile.TemporaryDirectory(prefix="finchsim-dry-run-") as tmp:
        cluster = KwokctlCluster(f"dry-run-{name}", Path(tmp), binaries)
        config = kwokctl_config(binaries, ControlPlaneTimings(), controllers=False)
        kubeconfig = cluster.create(config)
        clients = Clients.connect(kubeconfig, Path(tmp) / "discovery.json")
        try:
            problems += apply_objects(clients, crds + objects)
            _default_service_accounts(clients, {o.namespace for o in objects if o.namespace})
            for item in objects:
                pod = pod_template(item)
                if pod is None:
                    continue
                try:
                    clients.core.create_namespaced_pod(item.namespace, pod, dry_run="All")
                except ApiException as exc:
                    if exc.status >= 500:
                        raise
                    problems.append(
                        Problem(item.source, f"{item.ref} (its pods)", api_message(exc))
                    )
        finally:
            clients.close()
            cluster.delete()
    return problems


def check_targets(
    binaries: Mapping[str, Path], crds: list[Rendered], targets: Mapping[str, list[Rendered]]
) -> list[Problem]:
    """Every problem the API server finds in `targets` (build target name -> objects). Each
    target gets its own server: overlays share namespaces, and one must not see another."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(_check_one, binaries, crds, objs, name) for name, objs in targets.items()
        ]
        return [problem for f in futures for problem in f.result()]
