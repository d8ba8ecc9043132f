"""The bench's bare starts: which workloads start alone in which order, and the Pod (and
claims) each one's template gives, as its controller would make it."""

from __future__ import annotations

from typing import Any

import pytest

from finchsim.benchmarks.bare import CONTROLLER_KINDS, bare_pod, start_order
from finchsim.benchmarks.local import program_name
from finchsim.platform.manifests import Rendered, render
from finchsim.project import Project


def workload(kind: str, name: str, **spec: Any) -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": name}, "annotations": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "i"}], "volumes": spec.pop("volumes", [])},
    }
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": template, **spec},
    }


def test_statefulsets_start_first_then_deployments_by_name() -> None:
    objects = [
        Rendered(workload("Deployment", "web"), "x"),
        Rendered(workload("StatefulSet", "redis"), "x"),
        Rendered({"kind": "Service", "metadata": {"name": "web"}}, "x"),
        Rendered(workload("Deployment", "beat"), "x"),
        Rendered(workload("StatefulSet", "postgres"), "x"),
    ]
    assert [w["metadata"]["name"] for w in start_order(objects)] == [
        "postgres",
        "redis",
        "beat",
        "web",
    ]


def test_a_deployments_pod_keeps_its_template() -> None:
    deployment = workload("Deployment", "web", replicas=3)
    pod, claims = bare_pod(deployment)
    assert claims == []
    assert pod == {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "web-bare",
            "namespace": "ns",
            "labels": {"app": "web"},
            "annotations": {"a": "b"},
        },
        "spec": deployment["spec"]["template"]["spec"],
    }


def test_a_statefulsets_pod_is_ordinal_zero_with_its_claims() -> None:
    claim_spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    sts = workload(
        "StatefulSet",
        "pg",
        serviceName="pg-headless",
        volumes=[{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
        volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": claim_spec}],
    )
    pod, claims = bare_pod(sts)
    assert pod["metadata"]["name"] == "pg-0"
    assert pod["metadata"]["labels"] == {
        "app": "pg",
        "statefulset.kubernetes.io/pod-name": "pg-0",
        "apps.kubernetes.io/pod-index": "0",
    }
    assert (pod["spec"]["hostname"], pod["spec"]["subdomain"]) == ("pg-0", "pg-headless")
    # The template's volume of the claim's name is replaced by the claim, as the controller does.
    assert pod["spec"]["volumes"] == [
        {"name": "tmp", "emptyDir": {}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-pg-0"}},
    ]
    assert claims == [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data-pg-0", "namespace": "ns", "labels": {"app": "pg"}},
            "spec": claim_spec,
        }
    ]
    assert sts["spec"]["template"]["spec"]["volumes"][0] == {"name": "data", "emptyDir": {}}


def test_the_production_overlay_starts_its_data_stores_first(project: Project) -> None:
    objects = render(project, "production")
    order = start_order(objects)
    assert [w["metadata"]["name"] for w in order] == [
        "finch-postgres",
        "finch-redis",
        "finch-backend",
        "finch-beat",
        "finch-frontend",
        "finch-worker",
    ]
    # What is left for the bare platform still holds what the pods need, no controller's object.
    left = {o.kind for o in objects if o.kind not in CONTROLLER_KINDS}
    assert {"Namespace", "ConfigMap", "Secret", "Service", "PersistentVolumeClaim"} <= left
    assert left.isdisjoint({"Deployment", "StatefulSet", "CronJob", "PodDisruptionBudget"})
    pod, claims = bare_pod(order[0])
    assert [c["metadata"]["name"] for c in claims] == ["data-finch-postgres-0"]
    assert pod["metadata"]["labels"]["app"] == "finch-postgres"


@pytest.mark.parametrize(
    ("cmdline", "comm", "program"),
    [
        (
            ["/venv/bin/python3", "/venv/bin/gunicorn", "finchapp.wsgi:application"],
            "python3",
            "gunicorn",
        ),
        (["/venv/bin/python", "-u", "/venv/bin/celery", "-A", "finchapp"], "python", "celery"),
        (["/venv/bin/python", "-m", "finchsim.cli", "bench"], "python", "finchsim"),
        (["python3", "-c", "print(1)"], "python3", "python3"),
        (["/usr/lib/postgresql/15/bin/postgres", "-D", "/x"], "postgres", "postgres"),
        (["postgres: finch finch 127.0.0.1(47456) idle"], "postgres", "postgres"),
        (["postgres:", "walwriter"], "postgres", "postgres"),
        (["nginx: worker process"], "nginx", "nginx"),
        (["redis-server 127.100.0.8:6379"], "redis-server", "redis-server"),
        ([], "kthread", "kthread"),
    ],
)
def test_memory_is_counted_per_program(cmdline: list[str], comm: str, program: str) -> None:
    assert program_name(cmdline, comm) == program
