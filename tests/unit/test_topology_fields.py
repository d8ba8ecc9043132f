"""The manifests' values are read as the API server checks them: a bad quantity or a negative
count is an InputError naming the source file, the object and the field, never a crash."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest

from finchsim.errors import InputError
from finchsim.platform.fields import parse_quantity
from finchsim.platform.manifests import Rendered
from finchsim.platform.topology import build_topology

SOURCE = "cluster/base/web.yaml"


# Vectors from k8s.io/apimachinery pkg/api/resource quantity_test.go (TestQuantityParse): the
# serialization grammar `<signedNumber><suffix>`, suffixes Ki..Ei, n u m k M G T P E, e<int>.
@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", "0"),
        ("250m", "0.25"),
        ("1.5", "1.5"),
        (".5", "0.5"),
        ("5.", "5"),
        ("1.G", "1000000000"),
        ("+1", "1"),
        ("-1", "-1"),
        ("100n", "0.0000001"),
        ("1u", "0.000001"),
        ("1k", "1000"),
        ("1M", "1000000"),
        ("1E", "1000000000000000000"),
        ("1e3", "1000"),
        ("1E-3", "0.001"),
        ("512Mi", "536870912"),
        ("1Ki", "1024"),
        ("4Gi", "4294967296"),
        (2, "2"),
        (0.5, "0.5"),
    ],
)
def test_quantity_grammar(text: object, value: str) -> None:
    assert parse_quantity(text) == Decimal(value)


@pytest.mark.parametrize(
    "text",
    [
        "lots",
        "",
        "1K",
        "1ki",
        "1Mb",
        " 2Gi",
        "2Gi ",
        "1.5.5",
        "1e",
        "1m1",
        "NaN",
        "1_000",
        "\u0661",  # ARABIC-INDIC DIGIT ONE
        True,
    ],
)
def test_quantity_grammar_refuses(text: object) -> None:
    with pytest.raises(ValueError, match="invalid quantity"):
        parse_quantity(text)


DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "demo"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "finch-sim/finch-backend:dev",
                        "ports": [{"name": "http", "containerPort": 8000}],
                        "resources": {
                            "requests": {"cpu": "250m", "memory": "512Mi"},
                            "limits": {"cpu": "500m", "memory": "1Gi"},
                        },
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
                    }
                ]
            },
        },
    },
}
HPA: dict[str, Any] = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "web", "namespace": "demo"},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "minReplicas": 2,
        "maxReplicas": 5,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70},
                },
            }
        ],
    },
}
CRONJOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "CronJob",
    "metadata": {"name": "backup", "namespace": "demo"},
    "spec": {
        "schedule": "0 2 * * *",
        "timeZone": "Europe/Berlin",
        "jobTemplate": {
            "spec": {
                "backoffLimit": 2,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "dump", "image": "postgres:15"}],
                    }
                },
            }
        },
    },
}


def problems(*objs: dict[str, Any]) -> list[str]:
    with pytest.raises(InputError) as info:
        build_topology([Rendered(o, SOURCE) for o in objs])
    return [str(p) for p in info.value.problems]


def changed(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `obj` with the dotted `path` (`[0]` for a list index) set to `value`."""
    new = copy.deepcopy(obj)
    parts = path.replace("[", ".").replace("]", "").split(".")
    node: Any = new
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    node[int(last) if last.isdigit() else last] = value
    return new


def test_good_objects_are_typed_with_kubernetes_rounding_and_defaults() -> None:
    obj = changed(DEPLOYMENT, "spec.template.spec.containers[0].resources.requests.cpu", "0.1m")
    topo = build_topology([Rendered(o, SOURCE) for o in (obj, HPA, CRONJOB)])
    web = topo.workloads["web"]
    assert web.containers[0].resources.cpu_request_m == 1  # rounded up, as MilliValue() does
    assert web.containers[0].resources.memory_limit == 2**30
    probe = web.containers[0].readiness
    assert probe is not None
    assert (probe.period, probe.timeout, probe.failure_threshold) == (10, 1, 3)
    assert (topo.hpas["web"].min_replicas, topo.hpas["web"].max_replicas) == (2, 5)
    assert topo.cronjobs["backup"].time_zone == "Europe/Berlin"


def test_a_zero_probe_timing_means_the_kubernetes_default() -> None:
    probe = "spec.template.spec.containers[0].readinessProbe"
    obj = changed(DEPLOYMENT, f"{probe}.periodSeconds", 0)
    obj = changed(obj, f"{probe}.failureThreshold", 0)
    topo = build_topology([Rendered(obj, SOURCE)])
    readiness = topo.workloads["web"].containers[0].readiness
    assert readiness is not None
    assert (readiness.period, readiness.failure_threshold) == (10, 3)


CONTAINER = "spec.template.spec.containers[0]"
REF = f"{SOURCE}: Deployment/demo/web"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (f"{CONTAINER}.resources.requests.cpu", "lots", "invalid quantity 'lots'"),
        (f"{CONTAINER}.resources.limits.memory", "1GB", "invalid quantity '1GB'"),
        (
            f"{CONTAINER}.resources.requests.memory",
            "-1Mi",
            "must be greater than or equal to 0, got '-1Mi'",
        ),
        (
            f"{CONTAINER}.resources.requests.cpu",
            "1",
            "must be less than or equal to the cpu limit ('500m'), got '1'",
        ),
        ("spec.replicas", -3, "must be greater than or equal to 0, got -3"),
        ("spec.replicas", "3", "expected an integer, got '3'"),
        (
            "spec.strategy.rollingUpdate.maxSurge",
            "a lot",
            "expected an integer or a percentage like 25%, got 'a lot'",
        ),
        (
            "spec.strategy.rollingUpdate.maxUnavailable",
            "150%",
            "must not be greater than 100%, got '150%'",
        ),
        (
            f"{CONTAINER}.readinessProbe.periodSeconds",
            -5,
            "must be greater than or equal to 0, got -5",
        ),
        (
            f"{CONTAINER}.ports[0].containerPort",
            70000,
            "must be at most 65535, got 70000",
        ),
    ],
)
def test_each_bad_value_names_file_object_and_field(path: str, value: Any, expected: str) -> None:
    assert problems(changed(DEPLOYMENT, path, value)) == [f"{REF} {path}: {expected}"]


def test_every_bad_value_of_every_object_is_listed_at_once() -> None:
    web = changed(DEPLOYMENT, "spec.replicas", -3)
    web = changed(web, f"{CONTAINER}.resources.requests.cpu", "lots")
    web = changed(web, "spec.strategy.rollingUpdate", {"maxSurge": 0, "maxUnavailable": "0%"})
    hpa = changed(HPA, "spec.maxReplicas", 1)
    hpa = changed(hpa, "spec.metrics[0].resource.target.averageUtilization", 0)
    cron = changed(CRONJOB, "spec.schedule", "every night")
    cron = changed(cron, "spec.timeZone", "Mars/Olympus")
    cron = changed(cron, "spec.jobTemplate.spec.backoffLimit", -1)
    assert problems(web, hpa, cron) == [
        f"{REF} spec.strategy.rollingUpdate.maxUnavailable: may not be 0 when maxSurge is 0",
        f"{REF} spec.replicas: must be greater than or equal to 0, got -3",
        f"{REF} {CONTAINER}.resources.requests.cpu: invalid quantity 'lots'",
        f"{SOURCE}: HorizontalPodAutoscaler/demo/web "
        "spec.metrics[0].resource.target.averageUtilization: "
        "must be greater than or equal to 1, got 0",
        f"{SOURCE}: HorizontalPodAutoscaler/demo/web spec.maxReplicas: "
        "must be greater than or equal to minReplicas (2), got 1",
        f"{SOURCE}: CronJob/demo/backup spec.schedule: invalid cron schedule 'every night'",
        f"{SOURCE}: CronJob/demo/backup spec.timeZone: unknown time zone 'Mars/Olympus'",
        f"{SOURCE}: CronJob/demo/backup spec.jobTemplate.spec.backoffLimit: "
        "must be greater than or equal to 0, got -1",
    ]


def test_liveness_probe_success_threshold_must_be_1() -> None:
    obj = changed(
        DEPLOYMENT,
        f"{CONTAINER}.livenessProbe",
        {"httpGet": {"path": "/live", "port": "http"}, "successThreshold": 2},
    )
    assert problems(obj) == [f"{REF} {CONTAINER}.livenessProbe.successThreshold: must be 1"]


def test_pdb_percentages_and_exclusive_fields() -> None:
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "minAvailable": "half"},
    }
    both = changed(pdb, "spec.maxUnavailable", 1)
    ref = f"{SOURCE}: PodDisruptionBudget/demo/web"
    assert problems(pdb) == [
        f"{ref} spec.minAvailable: expected an integer or a percentage like 25%, got 'half'"
    ]
    assert problems(changed(both, "spec.minAvailable", 1)) == [
        f"{ref} spec: minAvailable and maxUnavailable cannot be both set"
    ]
