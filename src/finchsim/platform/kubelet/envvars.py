"""The Service environment variables a kubelet gives every container (`enableServiceLinks`).

As pkg/kubelet/envvars/envvars.go `FromServices` builds them, for each Service with a cluster IP
(headless ones have none and get nothing): `{NAME}_SERVICE_HOST`, `{NAME}_SERVICE_PORT` (the
first port), `{NAME}_SERVICE_PORT_{PORTNAME}` per named port, and the Docker-link variables
`{NAME}_PORT=tcp://ip:port` (the first port) and `{NAME}_PORT_{port}_{PROTO}[_PROTO|_PORT|_ADDR]`.
NAME is the Service name upper-cased with `-` and `.` as `_` (a leading digit gets `_`). Which
Services (pkg/kubelet/kubelet_pods.go getServiceEnvVarMap): those of the pod's namespace when
`enableServiceLinks` is unset or true, and always the API server's own (`kubernetes` in
`default`). The container's own `env` wins over these; they may be referred to as `$(VAR)`.

They are real here: a Service named `finch-redis` hands every pod `FINCH_REDIS_PORT=tcp://...`,
which breaks a program that reads `FINCH_REDIS_PORT` as a number, as it would on a cluster."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MASTER = ("default", "kubernetes")


def variable_name(name: str) -> str:
    out = name.replace(".", "_").replace("-", "_").upper()
    return "_" + out if out[:1].isdigit() else out


def service_variables(service: Mapping[str, Any]) -> dict[str, str]:
    """The variables of one Service (a plain dict as the API returns it)."""
    spec = service.get("spec") or {}
    ip, ports = spec.get("clusterIP"), spec.get("ports") or []
    if not ip or ip == "None" or not ports:
        return {}
    prefix = variable_name(service["metadata"]["name"])
    env = {
        f"{prefix}_SERVICE_HOST": ip,
        f"{prefix}_SERVICE_PORT": str(ports[0]["port"]),
    }
    for port in ports:
        if port.get("name"):
            env[f"{prefix}_SERVICE_PORT_{variable_name(port['name'])}"] = str(port["port"])
    for i, port in enumerate(ports):
        proto = (port.get("protocol") or "TCP").lower()
        url = f"{proto}://{ip}:{port['port']}"
        if i == 0:
            env[f"{prefix}_PORT"] = url
        base = f"{prefix}_PORT_{port['port']}_{proto.upper()}"
        env.update(
            {
                base: url,
                f"{base}_PROTO": proto,
                f"{base}_PORT": str(port["port"]),
                f"{base}_ADDR": ip,
            }
        )
    return env


def service_links(services: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Per namespace, the variables of its Services; the API server's under `MASTER`."""
    by_namespace: dict[str, dict[str, str]] = {}
    for svc in services:
        meta = svc["metadata"]
        key = meta["namespace"]
        if (meta["namespace"], meta["name"]) == MASTER:
            by_namespace.setdefault("/".join(MASTER), {}).update(service_variables(svc))
        by_namespace.setdefault(key, {}).update(service_variables(svc))
    return by_namespace


def pod_service_env(
    pod: Mapping[str, Any], links: Mapping[str, Mapping[str, str]]
) -> dict[str, str]:
    """What `pod` gets: the API server's variables, always, then its namespace's Services'
    (unless `enableServiceLinks` is false), which win on a clash as in getServiceEnvVarMap."""
    env = dict(links.get("/".join(MASTER), {}))
    if (pod.get("spec") or {}).get("enableServiceLinks", True) is not False:
        env.update(links.get(pod["metadata"]["namespace"], {}))
    return env
