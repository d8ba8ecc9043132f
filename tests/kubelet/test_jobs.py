"""Job pods through finch's kubelet and the real Job controller: init containers, ConfigMap and
Secret environment, an emptyDir shared between them, the securityContext's user and fsGroup,
restartPolicy Never with Succeeded and Failed phases."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from finchsim.platform.kubernetes.client import Clients
from tests.kubelet.conftest import NS, wait_for
from tests.kubelet.test_kubelet import RESTRICTED

pytestmark = pytest.mark.kwok

CHECK = """
import os, sys
print("uid", os.getuid(), "gid", os.getgid(), "groups", os.getgroups())
print("env", os.environ["GREETING"], os.environ["TOKEN"], os.environ["POD_NAME"])
print("volume", open(os.environ["WORK"] + "/from-init").read())
ok = (os.getuid() == 1000 and 2000 in os.getgroups() and os.environ["GREETING"] == "hello"
      and os.environ["TOKEN"] == "s3cret"
      and open(os.environ["WORK"] + "/from-init").read() == "ok")
sys.exit(0 if ok else 7)
"""


def job(name: str, script: str, backoff_limit: int = 0) -> dict[str, Any]:
    security = {**RESTRICTED, "runAsUser": 1000, "runAsGroup": 1000}
    mount = [{"name": "work", "mountPath": "/work"}]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {"fsGroup": 2000},
                    "volumes": [{"name": "work", "emptyDir": {}}],
                    "initContainers": [
                        {
                            "name": "prepare",
                            "image": "python:3.12",
                            "command": ["python3", "-c", "open('/work/from-init','w').write('ok')"],
                            "securityContext": security,
                            "volumeMounts": mount,
                        }
                    ],
                    "containers": [
                        {
                            "name": "main",
                            "image": "python:3.12",
                            "command": ["python3", "-c", script],
                            "envFrom": [{"configMapRef": {"name": "settings"}}],
                            "env": [
                                {"name": "WORK", "value": "/work"},
                                {
                                    "name": "TOKEN",
                                    "valueFrom": {
                                        "secretKeyRef": {"name": "creds", "key": "token"}
                                    },
                                },
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                },
                            ],
                            "securityContext": security,
                            "volumeMounts": mount,
                        }
                    ],
                }
            },
        },
    }


def _condition(api: Clients, name: str) -> str | None:
    status = api.batch.read_namespaced_job_status(name, NS).status
    for c in status.conditions or []:
        if c.type in ("Complete", "Failed") and c.status == "True":
            return str(c.type)
    return None


def _pod(api: Clients, name: str) -> Any:
    pods = api.core.list_namespaced_pod(NS, label_selector=f"job-name={name}").items
    return pods[0] if pods else None


def test_job_runs_init_then_main_as_its_user_with_api_config(api: Clients) -> None:
    api.core.create_namespaced_config_map(
        NS, {"metadata": {"name": "settings"}, "data": {"GREETING": "hello"}}
    )
    api.core.create_namespaced_secret(
        NS, {"metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}}
    )
    api.batch.create_namespaced_job(NS, job("check", CHECK))
    result = wait_for("the check Job finished", lambda: _condition(api, "check"), timeout=90)
    pod = _pod(api, "check")
    print(result, pod.status.phase, pod.status.init_container_statuses[0].state.terminated)
    print(pod.status.container_statuses[0].state.terminated)
    assert result == "Complete"
    assert pod.status.phase == "Succeeded"
    assert pod.status.init_container_statuses[0].state.terminated.exit_code == 0
    assert pod.status.container_statuses[0].state.terminated.reason == "Completed"
    # `kubectl logs`: the API server proxies pods/log to our kubelet's containerLogs.
    name = pod.metadata.name
    log = api.core.read_namespaced_pod_log(name, NS, container="main")
    assert f"env hello s3cret {name}\n" in log, log
    assert api.core.read_namespaced_pod_log(name, NS, container="main", tail_lines=1) == (
        "volume ok\n"
    )
    with pytest.raises(ApiException) as missing:
        api.core.read_namespaced_pod_log(name, NS, container="nope")
    assert missing.value.status in (400, 404), missing.value


def test_failing_job_pod_is_failed_not_restarted(api: Clients) -> None:
    api.batch.create_namespaced_job(NS, job("fails", "import sys; sys.exit(4)"))
    result = wait_for("the fails Job finished", lambda: _condition(api, "fails"), timeout=90)
    pod = _pod(api, "fails")
    status = pod.status.container_statuses[0]
    print(result, pod.status.phase, status.state.terminated, status.restart_count)
    assert result == "Failed"
    assert pod.status.phase == "Failed"
    assert status.state.terminated.exit_code == 4 and status.restart_count == 0
