"""The pod template's parts as typed specs: containers, their resources, probes and environment.

Read by `finchsim.platform.topology` for every workload and job template; each value is checked
as the API server would (`finchsim.platform.fields`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from finchsim.platform.fields import Fields


@dataclass(frozen=True)
class Resources:
    cpu_request_m: int = 0
    cpu_limit_m: int = 0  # 0 = no limit
    memory_request: int = 0  # bytes
    memory_limit: int = 0

    @classmethod
    def parse(cls, spec: dict[str, Any] | None, f: Fields, path: str) -> Resources:
        spec = spec or {}
        req, lim = spec.get("requests") or {}, spec.get("limits") or {}
        found = cls(
            cpu_request_m=f.quantity(req.get("cpu"), f"{path}.requests.cpu", 1000),
            cpu_limit_m=f.quantity(lim.get("cpu"), f"{path}.limits.cpu", 1000),
            memory_request=f.quantity(req.get("memory"), f"{path}.requests.memory"),
            memory_limit=f.quantity(lim.get("memory"), f"{path}.limits.memory"),
        )
        # ValidateResourceRequirements: a request may not exceed its limit.
        for name, request, limit in (
            ("cpu", found.cpu_request_m, found.cpu_limit_m),
            ("memory", found.memory_request, found.memory_limit),
        ):
            if limit and request > limit:
                f.bad(
                    f"{path}.requests.{name}",
                    f"must be less than or equal to the {name} limit "
                    f"({lim[name]!r}), got {req[name]!r}",
                )
        return found


@dataclass(frozen=True)
class Probe:
    """An HTTP, TCP or exec probe with Kubernetes' defaults for unset timings."""

    kind: str  # httpGet | tcpSocket | exec
    path: str = "/"
    port: int | str = 0
    command: tuple[str, ...] = ()
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def parse(cls, spec: dict[str, Any] | None, f: Fields, path: str) -> Probe | None:
        """0 (or unset) means Kubernetes' default for every timing but the initial delay
        (SetDefaults_Probe); a negative value is refused (ValidateNonnegativeField)."""
        if not spec:
            return None

        def timing(key: str, default: int) -> int:
            return f.count(spec.get(key), f"{path}.{key}", 0) or default

        http, tcp = spec.get("httpGet"), spec.get("tcpSocket")
        kind = next((k for k in ("httpGet", "tcpSocket", "exec") if k in spec), None)
        if kind is None:
            return None
        return cls(
            kind,
            path=(http or {}).get("path", "/"),
            port=(http or tcp or {}).get("port", 0),
            command=tuple((spec.get("exec") or {}).get("command") or ()),
            initial_delay=timing("initialDelaySeconds", 0),
            period=timing("periodSeconds", 10),
            timeout=timing("timeoutSeconds", 1),
            success_threshold=timing("successThreshold", 1),
            failure_threshold=timing("failureThreshold", 3),
        )


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: dict[str, str]
    ports: dict[str, int]  # name (or str(number)) -> containerPort
    resources: Resources
    liveness: Probe | None = None
    readiness: Probe | None = None
    startup: Probe | None = None
    mounts: dict[str, str] = field(default_factory=dict)  # mountPath -> volume name

    def port(self, ref: int | str) -> int:
        """A probe's or service's port reference, resolved to a container port number."""
        if isinstance(ref, int):
            return ref
        return self.ports[ref] if ref in self.ports else int(ref)


def resolve_env(spec: dict[str, Any], config: dict[str, dict[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in spec.get("envFrom") or []:
        ref = source.get("configMapRef") or source.get("secretRef") or {}
        prefix = source.get("prefix", "")
        env.update({prefix + k: v for k, v in config.get(ref.get("name", ""), {}).items()})
    for var in spec.get("env") or []:
        if "value" in var:
            env[var["name"]] = str(var["value"])
            continue
        ref = var.get("valueFrom") or {}
        key_ref = ref.get("configMapKeyRef") or ref.get("secretKeyRef")
        if key_ref:
            value = config.get(key_ref["name"], {}).get(key_ref["key"])
            if value is not None:
                env[var["name"]] = value
    return env


def parse_containers(
    pod: dict[str, Any], config: dict[str, dict[str, str]], f: Fields, path: str, key: str
) -> tuple[Container, ...]:
    return tuple(
        parse_container(c, config, f, f"{path}.{key}[{i}]")
        for i, c in enumerate(pod.get(key) or [])
    )


def parse_container(
    spec: dict[str, Any], config: dict[str, dict[str, str]], f: Fields, path: str
) -> Container:
    ports = {}
    for i, port in enumerate(spec.get("ports") or []):
        number = f.count(port.get("containerPort"), f"{path}.ports[{i}].containerPort", 0, 1)
        if number > 65535:
            f.bad(f"{path}.ports[{i}].containerPort", f"must be at most 65535, got {number}")
        ports[port.get("name", str(number))] = number
    probes = {
        kind: Probe.parse(spec.get(f"{kind}Probe"), f, f"{path}.{kind}Probe")
        for kind in ("liveness", "readiness", "startup")
    }
    for kind in ("liveness", "startup"):
        probe = probes[kind]
        if probe is not None and probe.success_threshold != 1:
            f.bad(f"{path}.{kind}Probe.successThreshold", "must be 1")
    return Container(
        name=spec["name"],
        image=spec.get("image", ""),
        command=tuple(spec.get("command") or ()),
        args=tuple(str(a) for a in spec.get("args") or ()),
        env=resolve_env(spec, config),
        ports=ports,
        resources=Resources.parse(spec.get("resources"), f, f"{path}.resources"),
        liveness=probes["liveness"],
        readiness=probes["readiness"],
        startup=probes["startup"],
        mounts={m["mountPath"]: m["name"] for m in spec.get("volumeMounts") or []},
    )
