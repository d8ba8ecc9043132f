"""Why a pod is not ready, as `up`'s timeout message says it: pod statuses shaped as the API
server returns them (kube-scheduler's Unschedulable condition, the kubelet's Waiting states and
lastState), read through the kubernetes client's own deserializer."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client import ApiClient, V1Pod

from finchsim.platform.kubernetes.unready import pod_reason, unhealthy_messages, unready_lines

UNSCHEDULABLE = "0/3 nodes are available: 3 Insufficient cpu."


def pod(name: str, status: dict[str, Any], owner: str = "web") -> V1Pod:
    doc = {
        "metadata": {
            "name": name,
            "namespace": "demo",
            "labels": {"pod-template-hash": "abc"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": f"{owner}-abc",
                    "uid": "u",
                    "controller": True,
                }
            ],
        },
        "status": status,
    }
    result: V1Pod = ApiClient().deserialize(json.dumps(doc), "V1Pod", "application/json")
    return result


def cond(kind: str, status: str, **extra: str) -> dict[str, str]:
    return {"type": kind, "status": status, **extra}


def running(ready: bool, last_exit: int | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": "main",
        "image": "x",
        "imageID": "",
        "ready": ready,
        "restartCount": 0 if last_exit is None else 4,
        "state": {"running": {}},
    }
    if last_exit is not None:
        c["lastState"] = {"terminated": {"exitCode": last_exit, "reason": "Error"}}
    return c


def waiting(reason: str, message: str = "", last_exit: int | None = None) -> dict[str, Any]:
    c = running(False, last_exit)
    c["state"] = {"waiting": {"reason": reason, "message": message}}
    return c


def status(*containers: dict[str, Any], ready: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "phase": "Running",
        "conditions": [cond("PodScheduled", "True"), cond("Ready", str(ready))],
        "containerStatuses": list(containers),
        **extra,
    }


@pytest.mark.parametrize(
    ("pod_status", "unhealthy", "expected"),
    [
        (status(running(True), ready=True), "", None),
        ({"phase": "Succeeded"}, "", None),
        (
            {
                "phase": "Pending",
                "conditions": [
                    cond("PodScheduled", "False", reason="Unschedulable", message=UNSCHEDULABLE)
                ],
            },
            "",
            f"Pending: {UNSCHEDULABLE}",
        ),
        (
            status(waiting("CrashLoopBackOff", "back-off 20s restarting failed", last_exit=3)),
            "",
            "container main: CrashLoopBackOff; last exit code 3 (Error), restarted 4 time(s)",
        ),
        (
            status(waiting("ImagePullBackOff", 'Back-off pulling image "nothing:1"')),
            "",
            'container main: ImagePullBackOff: Back-off pulling image "nothing:1"',
        ),
        (
            status(waiting("ContainerCreating", "pulling")),
            "",
            "container main: ContainerCreating",
        ),
        (
            status(running(False)),
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            "container main not ready: Readiness probe failed: HTTP probe failed with "
            "statuscode: 503",
        ),
        (status(running(False)), "", "container main not ready: no probe result yet"),
        (
            status(
                running(False),
                initContainerStatuses=[
                    {**running(False), "name": "done", "state": {"terminated": {"exitCode": 0}}},
                    {**waiting("CreateContainerConfigError", 'secret "db" not found')},
                ],
            ),
            "",
            'container main: CreateContainerConfigError: secret "db" not found',
        ),
        ({"phase": "Failed", "reason": "Evicted"}, "", "Failed: Evicted"),
    ],
    ids=[
        "ready",
        "succeeded",
        "unschedulable",
        "crash-loop",
        "image-pull",
        "starting",
        "probe",
        "no-probe-yet",
        "init-config",
        "failed",
    ],
)
def test_the_reason_is_the_first_that_applies(
    pod_status: dict[str, Any], unhealthy: str, expected: str | None
) -> None:
    assert pod_reason(pod("web-abc-1", pod_status), unhealthy) == expected


def test_one_line_per_workload_with_the_count_of_the_others() -> None:
    crash = status(waiting("CrashLoopBackOff", last_exit=1))
    pods = [
        pod("web-abc-2", crash),
        pod("web-abc-1", crash),
        pod("db-abc-1", status(running(True), ready=True), owner="db"),
        pod("api-abc-1", status(running(False)), owner="api"),
    ]
    events = [
        {
            "metadata": {"namespace": "demo", "creationTimestamp": f"2026-01-01T00:00:0{i}Z"},
            "reason": reason,
            "note": note,
            "regarding": {"kind": "Pod", "name": "api-abc-1"},
        }
        for i, (reason, note) in enumerate(
            [("Unhealthy", "Readiness probe failed: 500"), ("Started", "x")]
        )
    ][::-1]  # listed newest first: the last Unhealthy one still wins
    lines = unready_lines(pods, unhealthy_messages(events))
    assert lines == [
        "pod demo/api-abc-1 (Deployment api): container main not ready: Readiness probe "
        "failed: 500",
        "pod demo/web-abc-1 (Deployment web, 1 more unready): container main: "
        "CrashLoopBackOff; last exit code 1 (Error), restarted 4 time(s)",
    ]


def test_a_crashing_container_is_quoted_from_its_logs_and_only_it() -> None:
    asked: list[tuple[str, str]] = []

    def tail(p: Any, container: str) -> str:
        asked.append((p.metadata.name, container))
        return "Traceback (most recent call last):\nConnectionError: no database\n"

    crash = pod("web-abc-1", status(waiting("CrashLoopBackOff", last_exit=1)))
    assert pod_reason(crash, "", tail) == (
        "container main: CrashLoopBackOff; last exit code 1 (Error), restarted 4 time(s); "
        "it printed: Traceback (most recent call last): | ConnectionError: no database"
    )
    assert asked == [("web-abc-1", "main")]
    pulling = pod("web-abc-2", status(waiting("ImagePullBackOff", "Back-off pulling")))
    assert pod_reason(pulling, "", tail) == "container main: ImagePullBackOff: Back-off pulling"
    assert asked == [("web-abc-1", "main")]  # no exit, no logs asked for
