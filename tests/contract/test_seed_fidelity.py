"""The rendered overlays hold the seed's numbers (finch-kubernetes-architecture.md).

Rendered through the `project` fixture (the checkout, with its set-up secrets ensured).
One row per number: (overlay, kind, name, field path, expected). A path is dotted keys with
`[3]` for a list index, `[name=x]` for the list element named x and `["a.b/c"]` for a key
with dots (annotations). The base and `production` reproduce the seed as designed; the rows
for `recommended` hold our corrections."""

from __future__ import annotations

import functools
import math
import re
from typing import Any

import pytest
from kubernetes.utils.quantity import parse_quantity

from finchsim.platform.manifests import Rendered, render
from finchsim.project import Project

PROD, STAGING, REC = "production", "staging", "recommended"
ENVS = (PROD, STAGING, REC)

CONTAINERS = "spec.template.spec.containers"
FRONTEND = f"{CONTAINERS}[name=finch-frontend].resources"
BACKEND = f"{CONTAINERS}[name=finch-backend].resources"
WORKER = f"{CONTAINERS}[name=finch-worker].resources"
POSTGRES = f"{CONTAINERS}[name=postgres].resources"
REDIS = f"{CONTAINERS}[name=redis].resources"
VCT = "spec.volumeClaimTemplates[0].spec"  # the `data` claim
BACKUP = "spec.jobTemplate.spec.template.spec.containers[name=postgres-backup]"
ANN = 'metadata.annotations["nginx.ingress.kubernetes.io/{}"]'

Row = tuple[str, str, str, str, Any]


def _resources(
    envs: tuple[str, ...],
    kind: str,
    name: str,
    path: str,
    req: tuple[str, str],
    lim: tuple[str, str],
) -> list[Row]:
    return [
        row
        for env in envs
        for row in (
            (env, kind, name, f"{path}.requests.memory", req[0]),
            (env, kind, name, f"{path}.requests.cpu", req[1]),
            (env, kind, name, f"{path}.limits.memory", lim[0]),
            (env, kind, name, f"{path}.limits.cpu", lim[1]),
        )
    ]


ROWS: list[Row] = [
    # Seed "Resource Allocation", identical in every environment (the seed gives one set).
    *_resources(
        ENVS, "Deployment", "finch-frontend", FRONTEND, ("128Mi", "100m"), ("256Mi", "200m")
    ),
    *_resources(ENVS, "Deployment", "finch-backend", BACKEND, ("512Mi", "250m"), ("1Gi", "500m")),
    *_resources(ENVS, "Deployment", "finch-worker", WORKER, ("256Mi", "200m"), ("512Mi", "400m")),
    *_resources(
        (PROD, STAGING),
        "StatefulSet",
        "finch-postgres",
        POSTGRES,
        ("256Mi", "250m"),
        ("1Gi", "500m"),
    ),
    *_resources(
        (PROD, STAGING), "StatefulSet", "finch-redis", REDIS, ("128Mi", "100m"), ("512Mi", "250m")
    ),
    # Replicas and rollout strategy.
    (PROD, "Deployment", "finch-frontend", "spec.replicas", 2),
    (PROD, "Deployment", "finch-backend", "spec.replicas", 3),
    (PROD, "Deployment", "finch-worker", "spec.replicas", 2),
    (STAGING, "Deployment", "finch-frontend", "spec.replicas", 1),
    (STAGING, "Deployment", "finch-backend", "spec.replicas", 1),
    (STAGING, "Deployment", "finch-worker", "spec.replicas", 1),
    *[(env, "Deployment", "finch-beat", "spec.replicas", 1) for env in ENVS],
    *[(env, "Deployment", "finch-beat", "spec.strategy.type", "Recreate") for env in ENVS],
    (PROD, "Deployment", "finch-frontend", "spec.strategy.rollingUpdate.maxUnavailable", 0),
    (PROD, "Deployment", "finch-backend", "spec.strategy.rollingUpdate.maxUnavailable", 1),
    (
        PROD,
        "Deployment",
        "finch-worker",
        f"{CONTAINERS}[name=finch-worker].command",
        ["celery", "-A", "finchapp", "worker", "--concurrency=4", "--loglevel=INFO"],
    ),
    (
        PROD,
        "Deployment",
        "finch-backend",
        "spec.template.spec.initContainers[name=migrate].command",
        ["python", "manage.py", "migrate", "--noinput"],
    ),
    # Autoscalers.
    (PROD, "HorizontalPodAutoscaler", "finch-backend-hpa", "spec.minReplicas", 3),
    (PROD, "HorizontalPodAutoscaler", "finch-backend-hpa", "spec.maxReplicas", 10),
    (PROD, "HorizontalPodAutoscaler", "finch-backend-hpa", "spec.metrics[0].resource.name", "cpu"),
    (
        PROD,
        "HorizontalPodAutoscaler",
        "finch-backend-hpa",
        "spec.metrics[0].resource.target.averageUtilization",
        70,
    ),
    (
        PROD,
        "HorizontalPodAutoscaler",
        "finch-backend-hpa",
        "spec.metrics[1].resource.name",
        "memory",
    ),
    (
        PROD,
        "HorizontalPodAutoscaler",
        "finch-backend-hpa",
        "spec.metrics[1].resource.target.averageUtilization",
        80,
    ),
    (
        PROD,
        "HorizontalPodAutoscaler",
        "finch-frontend-hpa",
        "spec.metrics[0].resource.target.averageUtilization",
        70,
    ),
    (PROD, "HorizontalPodAutoscaler", "finch-frontend-hpa", "spec.minReplicas", 2),
    (STAGING, "HorizontalPodAutoscaler", "finch-backend-hpa", "spec.minReplicas", 1),
    (STAGING, "HorizontalPodAutoscaler", "finch-backend-hpa", "spec.maxReplicas", 3),
    (STAGING, "HorizontalPodAutoscaler", "finch-frontend-hpa", "spec.minReplicas", 1),
    (PROD, "VerticalPodAutoscaler", "finch-backend-vpa", "spec.updatePolicy.updateMode", "Auto"),
    (PROD, "VerticalPodAutoscaler", "finch-backend-vpa", "spec.targetRef.name", "finch-backend"),
    # Storage: sizes, classes, access modes.
    (PROD, "StatefulSet", "finch-postgres", f"{VCT}.resources.requests.storage", "20Gi"),
    (STAGING, "StatefulSet", "finch-postgres", f"{VCT}.resources.requests.storage", "10Gi"),
    (PROD, "StatefulSet", "finch-postgres", f"{VCT}.storageClassName", "fast-ssd"),
    (STAGING, "StatefulSet", "finch-postgres", f"{VCT}.storageClassName", "fast-ssd"),
    (PROD, "StatefulSet", "finch-redis", f"{VCT}.resources.requests.storage", "5Gi"),
    (STAGING, "StatefulSet", "finch-redis", f"{VCT}.resources.requests.storage", "2Gi"),
    (PROD, "PersistentVolumeClaim", "finch-media", "spec.resources.requests.storage", "50Gi"),
    (STAGING, "PersistentVolumeClaim", "finch-media", "spec.resources.requests.storage", "10Gi"),
    (PROD, "PersistentVolumeClaim", "finch-media", "spec.accessModes", ["ReadWriteMany"]),
    (STAGING, "PersistentVolumeClaim", "finch-media", "spec.accessModes", ["ReadWriteMany"]),
    # Images and the Redis configuration.
    (
        PROD,
        "StatefulSet",
        "finch-postgres",
        f"{CONTAINERS}[name=postgres].image",
        "postgres:15-alpine",
    ),
    (PROD, "StatefulSet", "finch-redis", f"{CONTAINERS}[name=redis].image", "redis:7-alpine"),
    (PROD, "StatefulSet", "finch-redis", f"{CONTAINERS}[name=redis].args[1]", "yes"),  # AOF
    (PROD, "StatefulSet", "finch-redis", f"{CONTAINERS}[name=redis].args[7]", "allkeys-lru"),
    # Backups: schedule, image, retention.
    (PROD, "CronJob", "postgres-backup", "spec.schedule", "0 2 * * *"),
    (STAGING, "CronJob", "postgres-backup", "spec.schedule", "0 2 * * *"),
    # Ours: whose 2 AM (the seed does not say), and never two dumps at once in any overlay.
    *[(env, "CronJob", "postgres-backup", "spec.timeZone", "Etc/UTC") for env in ENVS],
    *[(env, "CronJob", "postgres-backup", "spec.concurrencyPolicy", "Forbid") for env in ENVS],
    (PROD, "CronJob", "postgres-backup", f"{BACKUP}.image", "postgres:15-alpine"),
    (PROD, "CronJob", "postgres-backup", f"{BACKUP}.env[name=BACKUP_RETENTION_DAYS].value", "30"),
    (STAGING, "CronJob", "postgres-backup", f"{BACKUP}.env[name=BACKUP_RETENTION_DAYS].value", "7"),
    # Ingress: hosts, rate limit, TLS issuer, access control.
    (PROD, "Ingress", "finch-frontend", "spec.rules[0].host", "finch.example.com"),
    (PROD, "Ingress", "finch-api", "spec.rules[0].host", "api.finch.example.com"),
    (PROD, "Ingress", "finch-api", "spec.ingressClassName", "nginx"),
    (PROD, "Ingress", "finch-api", ANN.format("limit-rpm"), "100"),
    (PROD, "Ingress", "finch-frontend", ANN.format("limit-rpm"), "100"),
    (PROD, "Ingress", "finch-api", ANN.format("cors-allow-origin"), "https://finch.example.com"),
    (
        PROD,
        "Ingress",
        "finch-api",
        'metadata.annotations["cert-manager.io/cluster-issuer"]',
        "letsencrypt-prod",
    ),
    (STAGING, "Ingress", "finch-frontend", "spec.rules[0].host", "staging.finch.example.com"),
    (STAGING, "Ingress", "finch-api", "spec.rules[0].host", "api.staging.finch.example.com"),
    (STAGING, "Ingress", "finch-api", ANN.format("auth-type"), "basic"),
    (STAGING, "Ingress", "finch-frontend", ANN.format("auth-secret"), "finch-basic-auth"),
    (STAGING, "Ingress", "finch-api", ANN.format("limit-rpm"), "100"),
    # The seed's network policy, verbatim.
    (
        PROD,
        "NetworkPolicy",
        "frontend-to-backend",
        "spec.podSelector.matchLabels.app",
        "finch-backend",
    ),
    (
        PROD,
        "NetworkPolicy",
        "frontend-to-backend",
        "spec.ingress[0].from[0].podSelector.matchLabels.app",
        "finch-frontend",
    ),
    # The recommended overlay's corrections.
    (REC, "CronJob", "postgres-backup", "spec.schedule", "*/30 * * * *"),
    (REC, "CronJob", "postgres-backup", f"{BACKUP}.env[name=BACKUP_RETENTION_DAYS].value", "30"),
    (REC, "VerticalPodAutoscaler", "finch-backend-vpa", "spec.updatePolicy.updateMode", "Off"),
    (REC, "HorizontalPodAutoscaler", "finch-backend-hpa", "spec.metrics[0].resource.name", "cpu"),
    (REC, "HorizontalPodAutoscaler", "finch-backend-hpa", "spec.maxReplicas", 10),
    *_resources(
        (REC,), "StatefulSet", "finch-postgres", POSTGRES, ("1Gi", "500m"), ("1Gi", "500m")
    ),
    *_resources((REC,), "StatefulSet", "finch-redis", REDIS, ("512Mi", "250m"), ("512Mi", "250m")),
    (REC, "StatefulSet", "finch-redis", f"{CONTAINERS}[name=redis].args[7]", "volatile-lru"),
    (REC, "StatefulSet", "finch-postgres", f"{VCT}.resources.requests.storage", "20Gi"),
]

_TOKEN = re.compile(r'\.?([A-Za-z0-9_-]+)|\[(\d+)\]|\[([A-Za-z]+)=([^\]]+)\]|\["([^"]+)"\]')
_MISSING = "<missing>"


@functools.cache
def _objects(project: Project, overlay: str) -> tuple[Rendered, ...]:
    return tuple(render(project, overlay))


def lookup(obj: Any, path: str) -> Any:
    """The value at `path` in `obj` (syntax in the module docstring), or `<missing>`."""
    pos = 0
    while pos < len(path):
        match = _TOKEN.match(path, pos)
        if match is None:
            raise ValueError(f"bad path {path!r} at {pos}")
        pos = match.end()
        key, index, sel_key, sel_value, quoted = match.groups()
        if index is not None:
            ok = isinstance(obj, list) and int(index) < len(obj)
            obj = obj[int(index)] if ok else _MISSING
        elif sel_key is not None:
            found = [o for o in obj or [] if isinstance(o, dict) and o.get(sel_key) == sel_value]
            obj = found[0] if found else _MISSING
        else:
            name = quoted if quoted is not None else key
            obj = obj.get(name, _MISSING) if isinstance(obj, dict) else _MISSING
        if obj is _MISSING:
            return _MISSING
    return obj


def _find(project: Project, overlay: str, kind: str, name: str) -> Rendered:
    found = [o for o in _objects(project, overlay) if o.kind == kind and o.name == name]
    assert found, f"{overlay}: no {kind} named {name} rendered"
    return found[0]


@pytest.mark.parametrize(
    ("overlay", "kind", "name", "path", "expected"),
    ROWS,
    ids=[f"{r[0]}-{r[1]}-{r[2]}-{r[3]}" for r in ROWS],
)
def test_rendered_value_matches_seed(
    project: Project, overlay: str, kind: str, name: str, path: str, expected: Any
) -> None:
    item = _find(project, overlay, kind, name)
    actual = lookup(item.obj, path)
    assert actual == expected, (
        f"{overlay}: {item.ref} {path}: expected {expected!r}, rendered {actual!r} "
        f"(defined in {item.source})"
    )


def test_lookup_reports_missing_fields() -> None:
    obj = {"a": [{"name": "x", "b": {"c.d/e": 1}}]}
    assert lookup(obj, 'a[name=x].b["c.d/e"]') == 1
    assert lookup(obj, "a[name=y].b") == _MISSING
    assert lookup(obj, "a[3]") == _MISSING


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "CronJob":
        return dict(obj["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    return dict(obj["spec"]["template"]["spec"])


def _pod_total(spec: dict[str, Any], field: str, resource: str) -> float:
    """A pod's effective amount: the larger of its containers' sum and its largest init."""

    def amount(c: dict[str, Any]) -> float:
        value = c.get("resources", {}).get(field, {}).get(resource)
        return float(parse_quantity(value)) if value is not None else 0.0

    main = sum(amount(c) for c in spec.get("containers", []))
    return max([main, *(amount(c) for c in spec.get("initContainers", []))])


def _max_pods(item: Rendered, objects: tuple[Rendered, ...]) -> int:
    """Most pods of one workload at once: HPA max (else replicas) plus rolling-update surge."""
    if item.kind == "CronJob":
        return 1  # concurrencyPolicy Forbid
    count = int(item.obj["spec"].get("replicas", 1))
    for hpa in objects:
        if (
            hpa.kind == "HorizontalPodAutoscaler"
            and hpa.obj["spec"]["scaleTargetRef"]["name"] == item.name
        ):
            count = int(hpa.obj["spec"]["maxReplicas"])
    strategy = item.obj["spec"].get("strategy", {})
    if item.kind == "Deployment" and strategy.get("type", "RollingUpdate") == "RollingUpdate":
        surge = strategy.get("rollingUpdate", {}).get("maxSurge", "25%")
        if isinstance(surge, str) and surge.endswith("%"):
            surge = math.ceil(count * int(surge[:-1]) / 100)
        count += int(surge)
    return count


@pytest.mark.parametrize("overlay", ENVS)
def test_quota_covers_every_workload_at_maximum_scale(project: Project, overlay: str) -> None:
    """The seed's "high"/"reduced" quotas are ours: they must fit the workloads' own maxima."""
    objects = _objects(project, overlay)
    quota = _find(project, overlay, "ResourceQuota", "finch-quota").obj["spec"]["hard"]
    workloads = [o for o in objects if o.kind in ("Deployment", "StatefulSet", "CronJob")]
    problems = []
    for field in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            need = sum(
                _max_pods(w, objects) * _pod_total(_pod_spec(w.obj), field, resource)
                for w in workloads
            )
            have = float(parse_quantity(quota[f"{field}.{resource}"]))
            if need > have:
                problems.append(f"{field}.{resource}: workloads need {need}, quota has {have}")
    pods = sum(_max_pods(w, objects) for w in workloads)
    if pods > int(quota["pods"]):
        problems.append(f"pods: workloads need {pods}, quota has {quota['pods']}")
    assert not problems, f"{overlay}: ResourceQuota finch-quota too small: " + "; ".join(problems)
