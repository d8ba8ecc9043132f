"""A pod from the API turned into what the kubelet runs: typed containers with their
environment resolved from the API (ConfigMaps, Secrets, the downward API), the volumes as
directories, and the user each container runs as.

The kubelet's rules (pkg/kubelet/kubelet_pods.go makeEnvironmentVariables): `envFrom` first, then
`env` in order; a missing ConfigMap/Secret or key that is not `optional` is a
CreateContainerConfigError naming it."""

from __future__ import annotations

import base64
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from finchsim.errors import PlatformError
from finchsim.platform.fields import Fields
from finchsim.platform.kubernetes.client import Clients
from finchsim.platform.manifests import Rendered
from finchsim.platform.podspec import Container, parse_container


class ConfigError(PlatformError):
    """CreateContainerConfigError: the container's configuration cannot be resolved."""


@dataclass(frozen=True)
class PodPlan:
    namespace: str
    name: str
    uid: str
    node: str
    inits: tuple[Container, ...]
    containers: tuple[Container, ...]
    restart_policy: str
    grace: int
    ids: dict[str, tuple[int, ...] | None]  # container -> (uid, gid, *groups) it runs as
    volumes: dict[str, dict[str, Any]]  # volume name -> its spec
    fs_group: int | None
    images: dict[str, str]


def _ids(pod: dict[str, Any], container: dict[str, Any]) -> tuple[int, ...] | None:
    """(runAsUser, runAsGroup, fsGroup and supplementalGroups), the container's settings over
    the pod's; None: as the kubelet itself runs (only root can become another user)."""
    pod_context = pod.get("securityContext") or {}
    merged = {**pod_context, **(container.get("securityContext") or {})}
    user = merged.get("runAsUser")
    if user is None or os.geteuid() != 0:
        return None
    groups = [int(g) for g in pod_context.get("supplementalGroups") or []]
    if pod_context.get("fsGroup") is not None:
        groups.insert(0, int(pod_context["fsGroup"]))
    return (int(user), int(merged.get("runAsGroup", user)), *groups)


def plan(pod: dict[str, Any]) -> PodPlan:
    """The parts of `pod` (a plain dict as the API returns it) that need no API lookups; the
    containers' environment is resolved by `resolve` at each start."""
    meta, spec = pod["metadata"], pod["spec"]
    f = Fields(Rendered(pod, f"pod {meta['namespace']}/{meta['name']}"))
    path = "spec"

    def containers(key: str) -> tuple[Container, ...]:
        return tuple(
            parse_container(c, {}, f, f"{path}.{key}[{i}]")
            for i, c in enumerate(spec.get(key) or [])
        )

    all_specs = (spec.get("initContainers") or []) + spec["containers"]
    return PodPlan(
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta["uid"],
        node=spec.get("nodeName", ""),
        inits=containers("initContainers"),
        containers=containers("containers"),
        restart_policy=spec.get("restartPolicy", "Always"),
        grace=int(spec.get("terminationGracePeriodSeconds", 30)),
        ids={c["name"]: _ids(spec, c) for c in all_specs},
        volumes={v["name"]: v for v in spec.get("volumes") or []},
        fs_group=(spec.get("securityContext") or {}).get("fsGroup"),
        images={c["name"]: c.get("image", "") for c in all_specs},
    )


class ApiLookups:
    """ConfigMaps and Secrets of one namespace, read once per container start."""

    def __init__(self, clients: Clients, namespace: str) -> None:
        self.clients = clients
        self.namespace = namespace
        self._cache: dict[tuple[str, str], dict[str, str] | None] = {}

    def data(self, kind: str, name: str) -> dict[str, str] | None:
        key = (kind, name)
        if key not in self._cache:
            try:
                if kind == "configmap":
                    obj = self.clients.core.read_namespaced_config_map(name, self.namespace)
                    self._cache[key] = dict(obj.data or {})
                else:
                    obj = self.clients.core.read_namespaced_secret(name, self.namespace)
                    self._cache[key] = {
                        k: base64.b64decode(v).decode(errors="replace")
                        for k, v in (obj.data or {}).items()
                    }
            except ApiException as exc:
                if exc.status != 404:
                    raise
                self._cache[key] = None
        return self._cache[key]


def _field(pod: dict[str, Any], path: str, pod_ip: str, host_ip: str) -> str:
    meta, spec = pod["metadata"], pod["spec"]
    simple = {
        "metadata.name": meta["name"],
        "metadata.namespace": meta["namespace"],
        "metadata.uid": meta["uid"],
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return str(simple[path])
    for prefix in ("metadata.labels['", "metadata.annotations['"):
        if path.startswith(prefix):
            where = meta.get(prefix.split(".")[1].split("[")[0]) or {}
            return str(where.get(path[len(prefix) : -2], ""))
    raise ConfigError(f"unsupported fieldRef {path!r}")


def resolve_env(
    pod: dict[str, Any], container: dict[str, Any], api: ApiLookups, pod_ip: str, host_ip: str
) -> dict[str, str]:
    """The container's environment as the kubelet builds it. Raises ConfigError."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        kind, ref = (
            ("configmap", source["configMapRef"])
            if source.get("configMapRef")
            else ("secret", source.get("secretRef") or {})
        )
        data = api.data(kind, ref.get("name", ""))
        if data is None:
            if ref.get("optional"):
                continue
            raise ConfigError(f'{kind} "{ref.get("name")}" not found')
        env.update({source.get("prefix", "") + k: v for k, v in data.items()})
    for var in container.get("env") or []:
        if "valueFrom" not in var:
            env[var["name"]] = str(var.get("value", ""))
            continue
        ref = var["valueFrom"]
        if "fieldRef" in ref:
            env[var["name"]] = _field(pod, ref["fieldRef"]["fieldPath"], pod_ip, host_ip)
            continue
        kind, key_ref = (
            ("configmap", ref["configMapKeyRef"])
            if "configMapKeyRef" in ref
            else ("secret", ref.get("secretKeyRef") or {})
        )
        if not key_ref:
            raise ConfigError(f"env {var['name']}: unsupported valueFrom {sorted(ref)}")
        data = api.data(kind, key_ref["name"])
        value = None if data is None else data.get(key_ref["key"])
        if value is None:
            if key_ref.get("optional"):
                continue
            what = f'{kind} "{key_ref["name"]}"'
            raise ConfigError(
                f"{what} not found"
                if data is None
                else f"couldn't find key {key_ref['key']} in {what.capitalize()}"
            )
        env[var["name"]] = value
    return env


def with_env(container: Container, env: dict[str, str]) -> Container:
    return dataclasses.replace(container, env=env)


def volume_dirs(
    plan_: PodPlan, pod_dir: Path, claims_dir: Path, api: ApiLookups
) -> dict[str, Path]:
    """Each volume as a directory: emptyDir per pod, a PVC per claim (kept across pods),
    ConfigMap/Secret volumes written as files; owned by the pod's fsGroup."""
    dirs: dict[str, Path] = {}
    for name, vol in plan_.volumes.items():
        if "persistentVolumeClaim" in vol:
            claim = vol["persistentVolumeClaim"]["claimName"]
            path = claims_dir / plan_.namespace / claim
        else:
            path = pod_dir / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        source = vol.get("configMap") or vol.get("secret")
        if source is not None:
            kind = "configmap" if "configMap" in vol else "secret"
            ref = source.get("name") or source.get("secretName", "")
            for key, value in (api.data(kind, ref) or {}).items():
                (path / key).write_text(value)
        if plan_.fs_group is not None and os.geteuid() == 0:
            for item in (path, *path.rglob("*")):
                os.chown(item, -1, int(plan_.fs_group))
            path.chmod(0o2775)
        else:
            path.chmod(0o777 if os.geteuid() == 0 else 0o755)
        dirs[name] = path
    return dirs
