"""The rendered manifests as typed specs, so platforms read numbers from one place.

Nothing about the Finch topology is written in Python: every replica count, request, limit,
probe timing, HPA bound, PDB, rate-limit annotation and schedule comes from the overlay. Each of
those values is checked as the API server would (`finchsim.platform.fields`): a bad one is an
InputError naming the source file, the object and the field, never a crash later."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from finchsim.errors import InputError, Problem
from finchsim.models.hpa_model import Hpa, HpaMetric
from finchsim.platform.fields import Fields
from finchsim.platform.manifests import Rendered
from finchsim.platform.podspec import Container as Container
from finchsim.platform.podspec import Probe as Probe
from finchsim.platform.podspec import Resources as Resources
from finchsim.platform.podspec import parse_containers

WORKLOAD_KINDS = ("Deployment", "StatefulSet")


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
    """Type the objects of one rendered overlay.

    Raises InputError listing every value the API server would refuse (a quantity that does
    not parse, a negative count, ...), each with its source file, object and field."""
    config = _config_data(objects)
    problems: list[Problem] = []
    workloads, services, hpas, pdbs, ingresses, cronjobs = {}, {}, {}, {}, {}, {}
    for item in objects:
        f, obj, name = Fields(item, problems), item.obj, item.name
        if item.kind in WORKLOAD_KINDS:
            workloads[name] = _workload(item.kind, obj, config, f)
        elif item.kind == "Service":
            services[name] = _service(obj)
        elif item.kind == "HorizontalPodAutoscaler":
            hpas[name] = _hpa(obj, f)
        elif item.kind == "PodDisruptionBudget":
            pdbs[name] = _pdb(obj, f)
        elif item.kind == "Ingress":
            ingresses[name] = _ingress(obj)
        elif item.kind == "CronJob":
            cronjobs[name] = _cronjob(obj, config, f)
    if problems:
        raise InputError(problems)
    namespaces = {item.namespace for item in objects if item.namespace}
    return Topology(
        namespace=sorted(namespaces)[0] if namespaces else "default",
        workloads=workloads,
        services=services,
        hpas=hpas,
        pdbs=pdbs,
        ingresses=ingresses,
        cronjobs=cronjobs,
        config=config,
    )


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


def _workload(
    kind: str, obj: dict[str, Any], config: dict[str, dict[str, str]], f: Fields
) -> Workload:
    spec = obj["spec"]
    pod = spec["template"]["spec"]
    strategy = spec.get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    where = "spec.strategy.rollingUpdate"
    surge = f.int_or_percent(rolling.get("maxSurge"), f"{where}.maxSurge", "25%")
    unavailable = f.int_or_percent(
        rolling.get("maxUnavailable"), f"{where}.maxUnavailable", "25%", at_most_100=True
    )
    if strategy.get("type") != "Recreate" and surge in (0, "0%") and unavailable in (0, "0%"):
        f.bad(f"{where}.maxUnavailable", "may not be 0 when maxSurge is 0")
    return Workload(
        kind=kind,
        namespace=obj["metadata"].get("namespace", ""),
        name=obj["metadata"]["name"],
        replicas=f.count(spec.get("replicas"), "spec.replicas", 1),
        labels=dict(spec["selector"].get("matchLabels") or {}),
        containers=parse_containers(pod, config, f, "spec.template.spec", "containers"),
        init_containers=parse_containers(pod, config, f, "spec.template.spec", "initContainers"),
        max_surge=surge,
        max_unavailable=unavailable,
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


def _hpa(obj: dict[str, Any], f: Fields) -> Hpa:
    spec = obj["spec"]
    metrics = []
    for i, metric in enumerate(spec.get("metrics") or []):
        resource = metric.get("resource") or {}
        target = resource.get("target") or {}
        if metric.get("type") == "Resource" and target.get("type") == "Utilization":
            where = f"spec.metrics[{i}].resource.target.averageUtilization"
            utilization = f.count(target.get("averageUtilization"), where, 0, 1)
            metrics.append(HpaMetric(resource["name"], utilization))
    low = f.count(spec.get("minReplicas"), "spec.minReplicas", 1, 1)
    high = f.count(spec.get("maxReplicas"), "spec.maxReplicas", low, 1)
    if high < low:
        f.bad(
            "spec.maxReplicas", f"must be greater than or equal to minReplicas ({low}), got {high}"
        )
    return Hpa(
        name=obj["metadata"]["name"],
        target=spec["scaleTargetRef"]["name"],
        min_replicas=low,
        max_replicas=high,
        metrics=tuple(metrics),
        behavior=dict(spec.get("behavior") or {}),
    )


def _pdb(obj: dict[str, Any], f: Fields) -> Pdb:
    spec = obj["spec"]
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        f.bad("spec", "minAvailable and maxUnavailable cannot be both set")
    check = {
        key: f.int_or_percent(spec.get(key), f"spec.{key}", 0, at_most_100=True)
        if spec.get(key) is not None
        else None
        for key in ("minAvailable", "maxUnavailable")
    }
    return Pdb(
        obj["metadata"]["name"],
        dict(spec["selector"].get("matchLabels") or {}),
        check["minAvailable"],
        check["maxUnavailable"],
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


def _cronjob(obj: dict[str, Any], config: dict[str, dict[str, str]], f: Fields) -> CronJob:
    spec = obj["spec"]
    job_spec = spec["jobTemplate"]["spec"]
    template = job_spec["template"]
    pod = template["spec"]
    where = "spec.jobTemplate.spec.template.spec"
    job = Workload(
        kind="Job",
        namespace=obj["metadata"].get("namespace", ""),
        name=obj["metadata"]["name"],
        replicas=1,
        labels=dict((template.get("metadata") or {}).get("labels") or {}),
        containers=parse_containers(pod, config, f, where, "containers"),
        init_containers=parse_containers(pod, config, f, where, "initContainers"),
        restart_policy=pod.get("restartPolicy", "Never"),
        volumes=_volumes(pod, []),
    )
    deadline = job_spec.get("activeDeadlineSeconds")
    where = "spec.jobTemplate.spec"
    return CronJob(
        obj["metadata"]["name"],
        f.schedule(spec.get("schedule"), "spec.schedule"),
        job,
        time_zone=f.time_zone(spec.get("timeZone"), "spec.timeZone"),
        concurrency_policy=spec.get("concurrencyPolicy", "Allow"),
        backoff_limit=f.count(job_spec.get("backoffLimit"), f"{where}.backoffLimit", 6),
        active_deadline=(
            float(f.count(deadline, f"{where}.activeDeadlineSeconds", 0))
            if deadline is not None
            else None
        ),
    )
