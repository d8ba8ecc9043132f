"""kube-state-metrics families from API objects (JSON as the API server returns it).

Expected values follow kube-state-metrics' own code (internal/store/pod.go, deployment.go,
horizontalpodautoscaler.go, node.go, job.go, cronjob.go, persistentvolumeclaim.go,
resourcequota.go, namespace.go and utils.go's addConditionMetrics), cited per case."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.core import Metric

from finchsim.platform.exporters.kube_state import FAMILIES, ClusterObjects, families

NS = "finch-production"
POD_KEY = {"namespace": NS, "pod": "backend-abc", "uid": "u-1"}

POD: dict[str, Any] = {
    "metadata": {
        "name": "backend-abc",
        "namespace": NS,
        "uid": "u-1",
        "labels": {"app": "finch-backend", "pod-template-hash": "abc"},
        "creationTimestamp": "2026-12-02T10:00:00Z",
        "deletionTimestamp": "2026-12-02T10:09:00Z",
        "ownerReferences": [{"kind": "ReplicaSet", "name": "backend-7f", "controller": True}],
    },
    "spec": {
        "nodeName": "worker-1",
        "containers": [
            {
                "name": "app",
                "image": "finch/backend:1",
                "resources": {
                    "requests": {"cpu": "250m", "memory": "256Mi", "ephemeral-storage": "1Gi"},
                    "limits": {"cpu": "1", "memory": "512Mi", "example.com/gpu": "1"},
                },
            },
            {"name": "sidecar", "image": "busybox"},
        ],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-0"}}],
    },
    "status": {
        "phase": "Running",
        "reason": "Evicted",
        "hostIP": "127.0.10.1",
        "podIP": "127.0.10.5",
        "startTime": "2026-12-02T10:00:01Z",
        "conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "PodScheduled", "status": "True"},
        ],
        "containerStatuses": [
            {
                "name": "app",
                "ready": False,
                "restartCount": 3,
                "image": "finch/backend:1",
                "imageID": "",
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                "lastState": {
                    "terminated": {
                        "reason": "OOMKilled",
                        "exitCode": 137,
                        "startedAt": "2026-12-02T10:05:00Z",
                        "finishedAt": "2026-12-02T10:06:00Z",
                    }
                },
            },
            {
                "name": "sidecar",
                "ready": True,
                "restartCount": 0,
                "image": "busybox",
                "state": {"running": {"startedAt": "2026-12-02T10:00:02Z"}},
            },
        ],
        "initContainerStatuses": [
            {
                "name": "migrate",
                "restartCount": 1,
                "state": {
                    "terminated": {
                        "reason": "Completed",
                        "exitCode": 0,
                        "finishedAt": "2026-12-02T10:00:01Z",
                    }
                },
            },
            {
                "name": "wait",
                "restartCount": 0,
                "state": {"waiting": {"reason": "PodInitializing"}},
            },
        ],
    },
}
TERMINATED_POD: dict[str, Any] = {
    "metadata": {"name": "job-x", "namespace": NS, "uid": "u-2"},
    "spec": {"containers": [{"name": "c"}]},
    "status": {
        "phase": "Failed",
        "conditions": [{"type": "PodScheduled", "status": "False"}],
        "containerStatuses": [
            {
                "name": "c",
                "restartCount": 0,
                "state": {
                    "terminated": {
                        "reason": "Error",
                        "startedAt": "2026-12-02T11:00:00Z",
                        "finishedAt": "2026-12-02T11:00:30Z",
                    }
                },
            }
        ],
    },
}
DEPLOYMENT = {
    "metadata": {
        "name": "backend",
        "namespace": NS,
        "generation": 4,
        "labels": {"app": "b"},
        "creationTimestamp": "2026-12-02T09:00:00Z",
    },
    "spec": {
        "replicas": 3,
        "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
    },
    "status": {
        "replicas": 3,
        "availableReplicas": 2,
        "unavailableReplicas": 1,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
        ],
    },
}
STATEFULSET = {
    "metadata": {"name": "postgres", "namespace": NS, "creationTimestamp": "2026-12-02T09:00:00Z"},
    "spec": {"replicas": 1},
    "status": {"replicas": 1, "readyReplicas": 1, "currentRevision": "r1", "updateRevision": "r2"},
}
HPA = {
    "metadata": {"name": "backend", "namespace": NS},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "backend"},
        "maxReplicas": 10,
        "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"averageUtilization": 70}}},
            {
                "type": "Pods",
                "pods": {"metric": {"name": "rps"}, "target": {"averageValue": "1500m"}},
            },
        ],
    },
    "status": {
        "currentReplicas": 3,
        "desiredReplicas": 4,
        "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 89}}}
        ],
        "conditions": [
            {"type": "AbleToScale", "status": "True"},
            {"type": "ScalingActive", "status": "False"},
            {"type": "ScalingLimited", "status": "Unknown"},
        ],
    },
}
NODE = {
    "metadata": {
        "name": "worker-1",
        "creationTimestamp": "2026-12-02T08:00:00Z",
        "labels": {"node-role.kubernetes.io/worker": ""},
    },
    "spec": {"unschedulable": True, "taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]},
    "status": {
        "allocatable": {"cpu": "1900m", "memory": "4Gi", "pods": "110", "hugepages-2Mi": "0"},
        "capacity": {"cpu": "2", "memory": "4Gi"},
        "conditions": [{"type": "Ready", "status": "Unknown"}],
        "addresses": [{"type": "InternalIP", "address": "127.0.10.1"}],
        "nodeInfo": {"kubeletVersion": "v1.34.4"},
    },
}
NAMESPACE = {"metadata": {"name": NS, "creationTimestamp": "2026-12-02T07:00:00Z"}}
NAMESPACE["status"] = {"phase": "Active"}
PVC = {
    "metadata": {"name": "data-0", "namespace": NS, "creationTimestamp": "2026-12-02T09:00:00Z"},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}},
    "status": {"phase": "Pending", "conditions": [{"type": "Resizing", "status": "True"}]},
}
QUOTA = {
    "metadata": {"name": "q", "namespace": NS, "creationTimestamp": "2026-12-02T07:00:00Z"},
    "status": {"hard": {"requests.cpu": "4", "pods": "20"}, "used": {"requests.cpu": "1250m"}},
}
CRONJOB = {
    "metadata": {
        "name": "backup",
        "namespace": NS,
        "resourceVersion": "812",
        "creationTimestamp": "2026-11-30T12:00:00Z",
    },
    "spec": {
        "schedule": "0 2 * * *",
        "timeZone": "Europe/Berlin",
        "concurrencyPolicy": "Forbid",
        "suspend": False,
        "startingDeadlineSeconds": 300,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 1,
    },
    "status": {
        "active": [{"name": "backup-1"}],
        "lastScheduleTime": "2026-12-01T01:00:00Z",
        "lastSuccessfulTime": "2026-12-01T01:02:03Z",
    },
}
JOB_BACKOFF = {
    "metadata": {
        "name": "backup-1",
        "namespace": NS,
        "creationTimestamp": "2026-12-01T01:00:00Z",
        "ownerReferences": [{"kind": "CronJob", "name": "backup", "controller": True}],
    },
    "spec": {"parallelism": 1, "completions": 1, "activeDeadlineSeconds": 600},
    "status": {
        "failed": 2,
        "startTime": "2026-12-01T01:00:01Z",
        "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
    },
}
JOB_RUNNING = {
    "metadata": {"name": "manual", "namespace": NS},
    "spec": {},
    "status": {
        "failed": 2,
        "succeeded": 1,
        "active": 1,
        "ready": 1,
        "completionTime": "2026-12-01T01:09:00Z",
        "conditions": [{"type": "Complete", "status": "False"}],
    },
}
OBJECTS = ClusterObjects(
    {
        "pods": [POD, TERMINATED_POD],
        "deployments": [DEPLOYMENT],
        "statefulsets": [STATEFULSET],
        "horizontalpodautoscalers": [HPA],
        "nodes": [NODE],
        "namespaces": [NAMESPACE],
        "persistentvolumeclaims": [PVC],
        "resourcequotas": [QUOTA],
        "cronjobs": [CRONJOB],
        "jobs": [JOB_BACKOFF, JOB_RUNNING],
    }
)
ALLOW = {"pods": ["app"], "deployments": ["app"]}


def samples(metrics: list[Metric]) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for m in metrics for s in m.samples}


@pytest.fixture(scope="module")
def got() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return samples(families(OBJECTS, ALLOW))


def series(
    got: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **match: str
) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of `name` whose labels include `match`."""
    want = set(match.items())
    return {labels: v for (n, labels), v in got.items() if n == name and want <= labels}


def one(got: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **match: str) -> float:
    found = series(got, name, **match)
    assert len(found) == 1, (name, match, found)
    return next(iter(found.values()))


def test_every_declared_family_has_samples_for_a_full_cluster(got: Any) -> None:
    """No declared family is dead code: the fixture exercises each one."""
    produced = {name for name, _ in got}
    assert [f.name for f in FAMILIES if f.name not in produced] == []


def test_waiting_and_last_terminated_reasons(got: Any) -> None:
    """pod.go: a reason series only while in that state, value 1; restarts is a counter."""
    key = {**POD_KEY, "container": "app"}
    assert series(got, "kube_pod_container_status_waiting_reason", **key) == {
        frozenset({**key, "reason": "CrashLoopBackOff"}.items()): 1.0
    }
    assert series(got, "kube_pod_container_status_waiting_reason", container="sidecar") == {}
    assert one(got, "kube_pod_container_status_last_terminated_reason", **key) == 1.0
    assert one(got, "kube_pod_container_status_last_terminated_reason", reason="OOMKilled") == 1
    assert one(got, "kube_pod_container_status_last_terminated_exitcode", **key) == 137
    assert one(got, "kube_pod_container_status_restarts_total", **key) == 3
    assert one(got, "kube_pod_container_status_waiting", **key) == 1
    assert one(got, "kube_pod_container_status_running", **key) == 0
    assert one(got, "kube_pod_container_status_running", container="sidecar") == 1
    assert one(got, "kube_pod_container_status_terminated_reason", reason="Error") == 1
    assert one(got, "kube_pod_init_container_status_waiting_reason", reason="PodInitializing") == 1
    assert one(got, "kube_pod_init_container_status_terminated_reason", reason="Completed") == 1


def test_pod_phase_ready_scheduled_and_info(got: Any) -> None:
    """pod.go: five phases, one of them 1; Ready/PodScheduled as true/false/unknown."""
    phases = {
        dict(k)["phase"]: v for k, v in series(got, "kube_pod_status_phase", **POD_KEY).items()
    }
    assert phases == {"Pending": 0, "Running": 1, "Succeeded": 0, "Failed": 0, "Unknown": 0}
    ready = {
        dict(k)["condition"]: v for k, v in series(got, "kube_pod_status_ready", **POD_KEY).items()
    }
    assert ready == {"true": 0, "false": 1, "unknown": 0}
    assert one(got, "kube_pod_status_unschedulable", pod="job-x") == 1
    assert series(got, "kube_pod_status_unschedulable", pod="backend-abc") == {}
    assert one(got, "kube_pod_status_reason", pod="backend-abc", reason="Evicted") == 1
    assert one(got, "kube_pod_status_reason", pod="backend-abc", reason="NodeLost") == 0
    info = one(
        got,
        "kube_pod_info",
        **POD_KEY,
        node="worker-1",
        created_by_kind="ReplicaSet",
        created_by_name="backend-7f",
        host_network="false",
        pod_ip="127.0.10.5",
    )
    assert info == 1
    assert one(got, "kube_pod_info", pod="job-x", created_by_kind="<none>") == 1
    assert one(got, "kube_pod_owner", pod="job-x", owner_kind="<none>") == 1
    assert one(got, "kube_pod_labels", **POD_KEY, label_app="finch-backend") == 1
    assert one(got, "kube_pod_created", **POD_KEY) == 1796205600  # 2026-12-02T10:00:00Z
    assert one(got, "kube_pod_completion_time", pod="job-x") == 1796209230
    assert one(
        got, "kube_pod_spec_volumes_persistentvolumeclaims_info", persistentvolumeclaim="data-0"
    )


@pytest.mark.parametrize(
    ("family", "resource", "unit", "value"),
    [
        ("kube_pod_container_resource_requests", "cpu", "core", 0.25),
        ("kube_pod_container_resource_requests", "memory", "byte", 256 * 2**20),
        ("kube_pod_container_resource_requests", "ephemeral_storage", "byte", 2**30),
        ("kube_pod_container_resource_limits", "cpu", "core", 1.0),
        ("kube_pod_container_resource_limits", "memory", "byte", 512 * 2**20),
        ("kube_pod_container_resource_limits", "example_com_gpu", "integer", 1),
    ],
)
def test_container_resources_units(
    got: Any, family: str, resource: str, unit: str, value: float
) -> None:
    """pod.go: cpu in cores (MilliValue/1000), bytes for memory and storage, sanitised names."""
    labels = {**POD_KEY, "container": "app", "node": "worker-1", "resource": resource}
    assert one(got, family, **labels, unit=unit) == value


def test_deployment_and_statefulset(got: Any) -> None:
    """deployment.go: status counts (unset = 0), maxSurge rounds up, maxUnavailable down."""
    key = {"namespace": NS, "deployment": "backend"}
    assert one(got, "kube_deployment_spec_replicas", **key) == 3
    assert one(got, "kube_deployment_status_replicas_available", **key) == 2
    assert one(got, "kube_deployment_status_replicas_unavailable", **key) == 1
    assert one(got, "kube_deployment_status_replicas_ready", **key) == 0
    assert one(got, "kube_deployment_spec_strategy_rollingupdate_max_surge", **key) == 1
    assert one(got, "kube_deployment_spec_strategy_rollingupdate_max_unavailable", **key) == 0
    assert one(got, "kube_deployment_metadata_generation", **key) == 4
    assert one(got, "kube_deployment_labels", **key, label_app="b") == 1
    available = series(got, "kube_deployment_status_condition", condition="Available")
    assert {dict(k)["status"]: v for k, v in available.items()} == {
        "true": 1,
        "false": 0,
        "unknown": 0,
    }
    assert one(got, "kube_deployment_status_condition", status="true")
    sts = {"namespace": NS, "statefulset": "postgres"}
    assert one(got, "kube_statefulset_replicas", **sts) == 1
    assert one(got, "kube_statefulset_status_replicas_ready", **sts) == 1
    assert one(got, "kube_statefulset_status_replicas_available", **sts) == 0
    assert one(got, "kube_statefulset_status_update_revision", **sts, revision="r2") == 1


def test_hpa(got: Any) -> None:
    """horizontalpodautoscaler.go: minReplicas defaults to 1; one condition series per
    status, lower-cased; targets by type (utilization, average)."""
    key = {"namespace": NS, "horizontalpodautoscaler": "backend"}
    assert one(got, "kube_horizontalpodautoscaler_spec_min_replicas", **key) == 1
    assert one(got, "kube_horizontalpodautoscaler_spec_max_replicas", **key) == 10
    assert one(got, "kube_horizontalpodautoscaler_status_current_replicas", **key) == 3
    assert one(got, "kube_horizontalpodautoscaler_status_desired_replicas", **key) == 4
    conditions = {
        (dict(k)["condition"], dict(k)["status"]): v
        for k, v in series(got, "kube_horizontalpodautoscaler_status_condition", **key).items()
    }
    assert conditions == {
        ("AbleToScale", "true"): 1,
        ("AbleToScale", "false"): 0,
        ("AbleToScale", "unknown"): 0,
        ("ScalingActive", "true"): 0,
        ("ScalingActive", "false"): 1,
        ("ScalingActive", "unknown"): 0,
        ("ScalingLimited", "true"): 0,
        ("ScalingLimited", "false"): 0,
        ("ScalingLimited", "unknown"): 1,
    }
    spec = "kube_horizontalpodautoscaler_spec_target_metric"
    assert one(got, spec, metric_name="cpu", metric_target_type="utilization") == 70
    assert one(got, spec, metric_name="rps", metric_target_type="average") == 1.5
    status = "kube_horizontalpodautoscaler_status_target_metric"
    assert one(got, status, metric_name="cpu", metric_target_type="utilization") == 89
    assert one(got, "kube_horizontalpodautoscaler_info", scaletargetref_name="backend") == 1


def test_node(got: Any) -> None:
    """node.go: allocatable/capacity as MilliValue/1000 (pods as integer), every condition as
    true/false/unknown, taints, unschedulable, roles from node-role.kubernetes.io/ labels."""
    alloc = series(got, "kube_node_status_allocatable", node="worker-1")
    assert {(dict(k)["resource"], dict(k)["unit"]): v for k, v in alloc.items()} == {
        ("cpu", "core"): 1.9,
        ("memory", "byte"): 4 * 2**30,
        ("pods", "integer"): 110,
        ("hugepages_2Mi", "byte"): 0,
    }
    assert one(got, "kube_node_status_condition", condition="Ready", status="unknown") == 1
    assert one(got, "kube_node_status_condition", condition="Ready", status="true") == 0
    assert one(got, "kube_node_spec_taint", key="k", value="v", effect="NoSchedule") == 1
    assert one(got, "kube_node_spec_unschedulable", node="worker-1") == 1
    assert one(got, "kube_node_role", role="worker") == 1
    assert one(got, "kube_node_info", internal_ip="127.0.10.1", kubelet_version="v1.34.4") == 1


def test_namespace_pvc_quota(got: Any) -> None:
    """namespace.go, persistentvolumeclaim.go, resourcequota.go (quantities MilliValue/1000)."""
    assert one(got, "kube_namespace_status_phase", namespace=NS, phase="Active") == 1
    assert one(got, "kube_namespace_status_phase", namespace=NS, phase="Terminating") == 0
    pvc = {"namespace": NS, "persistentvolumeclaim": "data-0"}
    assert one(got, "kube_persistentvolumeclaim_status_phase", **pvc, phase="Pending") == 1
    assert one(got, "kube_persistentvolumeclaim_status_phase", **pvc, phase="Bound") == 0
    assert (
        one(got, "kube_persistentvolumeclaim_resource_requests_storage_bytes", **pvc) == 10 * 2**30
    )
    assert one(got, "kube_persistentvolumeclaim_info", **pvc, storageclass="<none>") == 1
    assert one(got, "kube_persistentvolumeclaim_access_mode", access_mode="ReadWriteOnce") == 1
    quota = {"namespace": NS, "resourcequota": "q"}
    assert one(got, "kube_resourcequota", **quota, resource="requests.cpu", type="used") == 1.25
    assert one(got, "kube_resourcequota", **quota, resource="requests.cpu", type="hard") == 4
    assert one(got, "kube_resourcequota", **quota, resource="pods", type="hard") == 20


def test_cronjob(got: Any) -> None:
    """cronjob.go: the next firing after lastScheduleTime in the CronJob's timeZone (02:00
    Berlin is 01:00 UTC in December), info labels, active count."""
    key = {"namespace": NS, "cronjob": "backup"}
    assert one(got, "kube_cronjob_next_schedule_time", **key) == 1796173200  # 2026-12-02T01:00Z
    assert one(got, "kube_cronjob_status_last_successful_time", **key) == 1796086923
    assert one(got, "kube_cronjob_status_active", **key) == 1
    assert one(got, "kube_cronjob_spec_suspend", **key) == 0
    assert one(got, "kube_cronjob_metadata_resource_version", **key) == 812
    info = {"schedule": "0 2 * * *", "concurrency_policy": "Forbid", "timezone": "Europe/Berlin"}
    assert one(got, "kube_cronjob_info", **key, **info) == 1


def test_job_failed_reasons(got: Any) -> None:
    """job.go: a Failed condition gives one 0/1 series per known reason; failed pods without
    a known reason are counted under reason=""; conditions Complete/Failed as true/false/unknown."""
    failed = series(got, "kube_job_status_failed", job_name="backup-1")
    assert {dict(k)["reason"]: v for k, v in failed.items()} == {
        "BackoffLimitExceeded": 1,
        "DeadlineExceeded": 0,
        "Evicted": 0,
    }
    assert series(got, "kube_job_status_failed", job_name="manual") == {
        frozenset({"namespace": NS, "job_name": "manual", "reason": ""}.items()): 2
    }
    assert one(got, "kube_job_failed", job_name="backup-1", condition="true") == 1
    assert one(got, "kube_job_complete", job_name="manual", condition="false") == 1
    assert one(got, "kube_job_owner", job_name="backup-1", owner_kind="CronJob") == 1
    assert one(got, "kube_job_owner", job_name="manual", owner_kind="") == 1
    assert one(got, "kube_job_status_active", job_name="manual") == 1
    assert one(got, "kube_job_spec_active_deadline_seconds", job_name="backup-1") == 600
