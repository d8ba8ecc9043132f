"""Server-side apply of rendered objects, in the order a cluster needs them.

CRDs first (and wait until they are Established, so their custom resources can be applied),
then namespaces, then cluster-scoped objects, then namespaced objects with policy before
workloads (a LimitRange or ResourceQuota must exist before the first pod is admitted). With
`dry_run` every object is checked by the API server's validation and admission without being
stored (`kubectl apply --server-side --dry-run=server`); namespaces are then created for real,
because admission of a namespaced object needs its namespace to exist."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from finchsim.errors import PlatformError, Problem
from finchsim.platform.kubernetes.client import Clients, api_message
from finchsim.platform.manifests import ORIGIN_ANNOTATION, Rendered

FIELD_MANAGER = "finchsim"
# Apply order of namespaced kinds; unlisted kinds go last, in the order they were rendered.
ORDER = (
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ResourceQuota",
    "LimitRange",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Service",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "StatefulSet",
    "Deployment",
    "DaemonSet",
    "HorizontalPodAutoscaler",
    "VerticalPodAutoscaler",
    "CronJob",
    "Job",
    "Ingress",
)


def ordered(objects: Iterable[Rendered]) -> list[Rendered]:
    """CRDs, namespaces, cluster-scoped objects, then namespaced ones in `ORDER`."""

    def rank(item: Rendered) -> tuple[int, int]:
        if item.kind == "CustomResourceDefinition":
            return (0, 0)
        if item.kind == "Namespace":
            return (1, 0)
        if not item.namespace:
            return (2, 0)
        return (3, ORDER.index(item.kind) if item.kind in ORDER else len(ORDER))

    return sorted(objects, key=rank)  # sorted() is stable: rendering order within a rank


def _body(item: Rendered) -> dict[str, Any]:
    """The object as sent: without kustomize's origin annotation (ours, not the cluster's)."""
    obj = dict(item.obj)
    meta = dict(obj.get("metadata") or {})
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k != ORIGIN_ANNOTATION
    }
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    obj["metadata"] = meta
    return obj


def apply_objects(
    clients: Clients,
    objects: Iterable[Rendered],
    *,
    dry_run: bool = False,
) -> list[Problem]:
    """Apply every object; return one Problem per object the API server refused (naming the
    source file, the object and the server's message). Raises PlatformError when the server
    cannot be reached at all."""
    problems: list[Problem] = []
    crds_applied = False
    for item in ordered(objects):
        if item.kind != "CustomResourceDefinition" and crds_applied:
            _wait_established(clients, [o for o in objects if o.kind == "CustomResourceDefinition"])
            clients.dynamic.resources.invalidate_cache()
            crds_applied = False
        real = not dry_run or item.kind in ("Namespace", "CustomResourceDefinition")
        try:
            _apply_one(clients, item, dry_run=not real)
        except ApiException as exc:
            if exc.status in (401, 403) or exc.status >= 500 or exc.status == 0:
                raise PlatformError(f"applying {item.ref}: {api_message(exc)}") from exc
            problems.append(Problem(item.source, item.ref, api_message(exc)))
            continue
        except ResourceNotFoundError:
            problems.append(
                Problem(
                    item.source,
                    item.ref,
                    (
                        f"the API server does not serve {item.obj.get('apiVersion')} {item.kind} "
                        "(is its CRD in cluster/crds/?)"
                    ),
                )
            )
            continue
        if item.kind == "CustomResourceDefinition":
            crds_applied = True
    return problems


def _apply_one(clients: Clients, item: Rendered, *, dry_run: bool) -> None:
    resource = clients.dynamic.resources.get(api_version=item.obj["apiVersion"], kind=item.kind)
    clients.dynamic.server_side_apply(
        resource,
        body=_body(item),
        namespace=item.namespace or None,
        field_manager=FIELD_MANAGER,
        force_conflicts=True,
        dry_run="All" if dry_run else None,
    )


def _wait_established(clients: Clients, crds: list[Rendered], timeout: float = 60.0) -> None:
    """Wait until every applied CRD is Established (served by the API server)."""
    api = clients.dynamic.resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    deadline = time.monotonic() + timeout
    for crd in crds:
        while True:
            obj = clients.dynamic.get(api, name=crd.name).to_dict()
            conditions = (obj.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                break
            if time.monotonic() > deadline:
                raise PlatformError(f"CRD {crd.name} not Established after {timeout:.0f}s")
            time.sleep(0.2)
