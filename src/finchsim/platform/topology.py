"""The rendered manifests as typed specs, so platforms read numbers from one place.

Nothing about the Finch topology is written in Python: every replica count, request, limit,
probe timing, HPA bound, PDB, rate-limit annotation and schedule comes from the overlay."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from finchsim.models.hpa_model import Hpa, HpaMetric
from finchsim.platform.manifests import Rendered

WORKLOAD_KINDS = ("Deployment", "StatefulSet")


@dataclass(frozen=True)
class Resources:
    cpu_request_m: int = 0
    cpu_limit_m: int = 0  # 0 = no limit
    memory_request: int = 0  # bytes
    memory_limit: int = 0

    @classmethod
    def parse(cls, spec: dict[str, Any] | None) -> Resources:
        spec = spec or {}
        req, lim = spec.get("requests") or {}, spec.get("limits") or {}
        return cls(
            cpu_request_m=_millicores(req.get("cpu")),
            cpu_limit_m=_millicores(lim.get("cpu")),
            memory_request=_bytes(req.get("memory")),
            memory_limit=_bytes(lim.get("memory")),
        )


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
    def parse(cls, spec: dict[str, Any] | None) -> Probe | None:
        if not spec:
            return None
        timings = dict(
            initial_delay=spec.get("initialDelaySeconds", 0),
            period=spec.get("periodSeconds", 10),
            timeout=spec.get("timeoutSeconds", 1),
            success_threshold=spec.get("successThreshold", 1),
            failure_threshold=spec.get("failureThreshold", 3),
        )
        if "httpGet" in spec:
            http = spec["httpGet"]
            return cls("httpGet", path=http.get("path", "/"), port=http["port"], **timings)
        if "tcpSocket" in spec:
            return cls("tcpSocket", port=spec["tcpSocket"]["port"], **timings)
        if "exec" in spec:
            return cls("exec", command=tuple(spec["exec"]["command"]), **timings)
        return None


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


@dataclass(frozen=True)
class Workload:
    """A Deployment or StatefulSet."""

    kind: str
    namespace: str
    name: str
    replicas: int
    labels: dict[str, str]
    containers: tuple[Container, ...]
    init_containers: tuple[Container, ...] = ()
    max_surge: int | str = "25%"
    max_unavailable: int | str = "25%"
    recreate: bool = False
    restart_policy: str = "Always"  # Always (Deployment/StatefulSet) | Never | OnFailure (Job)
    # volume name -> "emptyDir", "pvc:<claim>" (a StatefulSet template gets one per pod), ...
    volumes: dict[str, str] = field(default_factory=dict)

    @property
    def requests(self) -> Resources:
        """The pod's total requests/limits, as the scheduler and the quota count them."""
        return Resources(
            cpu_request_m=sum(c.resources.cpu_request_m for c in self.containers),
            cpu_limit_m=sum(c.resources.cpu_limit_m for c in self.containers),
            memory_request=sum(c.resources.memory_request for c in self.containers),
            memory_limit=sum(c.resources.memory_limit for c in self.containers),
        )


@dataclass(frozen=True)
class Pdb:
    name: str
    selector: dict[str, str]
    min_available: int | str | None
    max_unavailable: int | str | None


@dataclass(frozen=True)
class IngressRule:
    host: str
    service: str
    port: int | str
    path: str = "/"


@dataclass(frozen=True)
class Ingress:
    name: str
    rules: tuple[IngressRule, ...]
    annotations: dict[str, str]
    tls_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Service:
    name: str
    selector: dict[str, str]
    ports: dict[int, int | str]  # service port -> target port


@dataclass(frozen=True)
class CronJob:
    name: str
    schedule: str
    job: Workload  # the job template as a one-replica workload of kind Job
    time_zone: str = "Etc/UTC"
    concurrency_policy: str = "Allow"
    backoff_limit: int = 6
    active_deadline: float | None = None  # seconds


@dataclass(frozen=True)
class Topology:
    namespace: str
    workloads: dict[str, Workload]
    services: dict[str, Service]
    hpas: dict[str, Hpa]
    pdbs: dict[str, Pdb]
    ingresses: dict[str, Ingress]
    cronjobs: dict[str, CronJob]
    config: dict[str, dict[str, str]]  # ConfigMap/Secret name -> data (secrets decoded)


def build_topology(objects: list[Rendered]) -> Topology:
    """Type the objects of one rendered overlay."""
    config = _config_data(objects)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for item in objects:
        by_kind.setdefault(item.kind, []).append(item.obj)
    namespaces = {item.namespace for item in objects if item.namespace}
    workloads = {}
    for kind in WORKLOAD_KINDS:
        for obj in by_kind.get(kind, []):
            workloads[obj["metadata"]["name"]] = _workload(kind, obj, config)
    return Topology(
        namespace=sorted(namespaces)[0] if namespaces else "default",
        workloads=workloads,
        services={o["metadata"]["name"]: _service(o) for o in by_kind.get("Service", [])},
        hpas={o["metadata"]["name"]: _hpa(o) for o in by_kind.get("HorizontalPodAutoscaler", [])},
        pdbs={o["metadata"]["name"]: _pdb(o) for o in by_kind.get("PodDisruptionBudget", [])},
        ingresses={o["metadata"]["name"]: _ingress(o) for o in by_kind.get("Ingress", [])},
        cronjobs={o["metadata"]["name"]: _cronjob(o, config) for o in by_kind.get("CronJob", [])},
        config=config,
    )


def _millicores(value: Any) -> int:
    return 0 if value is None else int(parse_quantity(value) * 1000)


def _bytes(value: Any) -> int:
    return 0 if value is None else int(parse_quantity(value))


def _config_data(objects: list[Rendered]) -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = {}
    for item in objects:
        if item.kind == "ConfigMap":
            data[item.name] = {k: str(v) for k, v in (item.obj.get("data") or {}).items()}
        elif item.kind == "Secret":
            decoded = {
                k: base64.b64decode(v).decode() for k, v in (item.obj.get("data") or {}).items()
            }
            decoded.update(item.obj.get("stringData") or {})
            data[item.name] = decoded
    return data


def _env(spec: dict[str, Any], config: dict[str, dict[str, str]]) -> dict[str, str]:
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


def _container(spec: dict[str, Any], config: dict[str, dict[str, str]]) -> Container:
    ports = {}
    for port in spec.get("ports") or []:
        ports[port.get("name", str(port["containerPort"]))] = int(port["containerPort"])
    return Container(
        name=spec["name"],
        image=spec.get("image", ""),
        command=tuple(spec.get("command") or ()),
        args=tuple(str(a) for a in spec.get("args") or ()),
        env=_env(spec, config),
        ports=ports,
        resources=Resources.parse(spec.get("resources")),
        liveness=Probe.parse(spec.get("livenessProbe")),
        readiness=Probe.parse(spec.get("readinessProbe")),
        startup=Probe.parse(spec.get("startupProbe")),
        mounts={m["mountPath"]: m["name"] for m in spec.get("volumeMounts") or []},
    )


def _workload(kind: str, obj: dict[str, Any], config: dict[str, dict[str, str]]) -> Workload:
    spec = obj["spec"]
    pod = spec["template"]["spec"]
    strategy = spec.get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    return Workload(
        kind=kind,
        namespace=obj["metadata"].get("namespace", ""),
        name=obj["metadata"]["name"],
        replicas=int(spec.get("replicas", 1)),
        labels=dict(spec["selector"].get("matchLabels") or {}),
        containers=tuple(_container(c, config) for c in pod["containers"]),
        init_containers=tuple(_container(c, config) for c in pod.get("initContainers") or []),
        max_surge=rolling.get("maxSurge", "25%"),
        max_unavailable=rolling.get("maxUnavailable", "25%"),
        recreate=strategy.get("type") == "Recreate",
        volumes=_volumes(pod, spec.get("volumeClaimTemplates") or []),
    )


def _volumes(pod: dict[str, Any], claim_templates: list[dict[str, Any]]) -> dict[str, str]:
    volumes = {}
    for vol in pod.get("volumes") or []:
        if "persistentVolumeClaim" in vol:
            volumes[vol["name"]] = f"pvc:{vol['persistentVolumeClaim']['claimName']}"
        else:
            volumes[vol["name"]] = next((k for k in vol if k != "name"), "emptyDir")
    for claim in claim_templates:
        volumes[claim["metadata"]["name"]] = f"pvc:{claim['metadata']['name']}"
    return volumes


def _service(obj: dict[str, Any]) -> Service:
    spec = obj.get("spec") or {}
    ports = {int(p["port"]): p.get("targetPort", p["port"]) for p in spec.get("ports") or []}
    return Service(obj["metadata"]["name"], dict(spec.get("selector") or {}), ports)


def _hpa(obj: dict[str, Any]) -> Hpa:
    spec = obj["spec"]
    metrics = []
    for metric in spec.get("metrics") or []:
        resource = metric.get("resource") or {}
        target = resource.get("target") or {}
        if metric.get("type") == "Resource" and target.get("type") == "Utilization":
            metrics.append(HpaMetric(resource["name"], int(target["averageUtilization"])))
    return Hpa(
        name=obj["metadata"]["name"],
        target=spec["scaleTargetRef"]["name"],
        min_replicas=int(spec.get("minReplicas", 1)),
        max_replicas=int(spec["maxReplicas"]),
        metrics=tuple(metrics),
        behavior=dict(spec.get("behavior") or {}),
    )


def _pdb(obj: dict[str, Any]) -> Pdb:
    spec = obj["spec"]
    return Pdb(
        obj["metadata"]["name"],
        dict(spec["selector"].get("matchLabels") or {}),
        spec.get("minAvailable"),
        spec.get("maxUnavailable"),
    )


def _ingress(obj: dict[str, Any]) -> Ingress:
    spec = obj["spec"]
    rules = []
    for rule in spec.get("rules") or []:
        for path in (rule.get("http") or {}).get("paths") or []:
            backend = path["backend"]["service"]
            port = backend["port"].get("number", backend["port"].get("name"))
            rules.append(IngressRule(rule["host"], backend["name"], port, path.get("path", "/")))
    tls = tuple(h for entry in spec.get("tls") or [] for h in entry.get("hosts") or [])
    return Ingress(
        obj["metadata"]["name"], tuple(rules), dict(obj["metadata"].get("annotations") or {}), tls
    )


def _cronjob(obj: dict[str, Any], config: dict[str, dict[str, str]]) -> CronJob:
    spec = obj["spec"]
    job_spec = spec["jobTemplate"]["spec"]
    template = job_spec["template"]
    pod = template["spec"]
    job = Workload(
        kind="Job",
        namespace=obj["metadata"].get("namespace", ""),
        name=obj["metadata"]["name"],
        replicas=1,
        labels=dict((template.get("metadata") or {}).get("labels") or {}),
        containers=tuple(_container(c, config) for c in pod["containers"]),
        init_containers=tuple(_container(c, config) for c in pod.get("initContainers") or []),
        restart_policy=pod.get("restartPolicy", "Never"),
        volumes=_volumes(pod, []),
    )
    deadline = job_spec.get("activeDeadlineSeconds")
    return CronJob(
        obj["metadata"]["name"],
        spec["schedule"],
        job,
        time_zone=spec.get("timeZone", "Etc/UTC"),
        concurrency_policy=spec.get("concurrencyPolicy", "Allow"),
        backoff_limit=int(job_spec.get("backoffLimit", 6)),
        active_deadline=float(deadline) if deadline is not None else None,
    )
