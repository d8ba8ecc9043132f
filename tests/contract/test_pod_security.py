"""Every container of every workload in every build target meets Pod Security "restricted".

Checked per container (init containers included), with pod-level settings inherited where
Kubernetes inherits them: runAsNonRoot, allowPrivilegeEscalation false, capabilities drop ALL
(only NET_BIND_SERVICE may be added), seccompProfile RuntimeDefault/Localhost, not privileged,
no uid 0; per pod: no host namespaces, no hostPath volumes. Our house rule adds
readOnlyRootFilesystem.

A workload that cannot meet a check says why, as the seed asks ("or a comment saying why not"),
in its pod template annotation `finchsim/security-exception`: "<check>[,<check>...]: <reason>",
e.g. "readOnlyRootFilesystem,hostPath: node exporter reads the host's /proc and /sys".
Check names are the keys of CHECKS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from finchsim.platform.manifests import build_targets, render
from finchsim.project import Project
from tests.conftest import REPO

EXCEPTION_ANNOTATION = "finchsim/security-exception"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")
TARGETS = sorted(build_targets(Project(REPO)))

Container = dict[str, Any]
Pod = dict[str, Any]


def _inherited(pod: Pod, container: Container, key: str) -> Any:
    """A securityContext field as the kubelet resolves it: container first, then the pod."""
    own = (container.get("securityContext") or {}).get(key)
    return own if own is not None else (pod.get("securityContext") or {}).get(key)


def _own(container: Container, key: str) -> Any:
    return (container.get("securityContext") or {}).get(key)


def _capabilities_ok(pod: Pod, c: Container) -> bool:
    caps = _own(c, "capabilities") or {}
    return "ALL" in (caps.get("drop") or []) and set(caps.get("add") or []) <= {"NET_BIND_SERVICE"}


def _seccomp_ok(pod: Pod, c: Container) -> bool:
    profile = _inherited(pod, c, "seccompProfile") or {}
    return profile.get("type") in ("RuntimeDefault", "Localhost")


CHECKS: dict[str, Callable[[Pod, Container], bool]] = {
    "runAsNonRoot": lambda pod, c: (
        _inherited(pod, c, "runAsNonRoot") is True and _inherited(pod, c, "runAsUser") != 0
    ),
    "allowPrivilegeEscalation": lambda pod, c: _own(c, "allowPrivilegeEscalation") is False,
    "capabilities": _capabilities_ok,
    "seccompProfile": _seccomp_ok,
    "privileged": lambda pod, c: _own(c, "privileged") is not True,
    "readOnlyRootFilesystem": lambda pod, c: _own(c, "readOnlyRootFilesystem") is True,
}
POD_CHECKS: dict[str, Callable[[Pod], bool]] = {
    "hostNamespaces": lambda pod: (
        not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    ),
    "hostPath": lambda pod: not any("hostPath" in v for v in pod.get("volumes") or []),
}


def pod_template(obj: dict[str, Any]) -> tuple[dict[str, Any], Pod]:
    """(metadata, spec) of the pod a workload object runs."""
    if obj["kind"] == "Pod":
        return obj.get("metadata") or {}, obj["spec"]
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"].get("metadata") or {}, spec["template"]["spec"]


def _exceptions(meta: dict[str, Any]) -> tuple[set[str], str]:
    text = str((meta.get("annotations") or {}).get(EXCEPTION_ANNOTATION, ""))
    names, _, reason = text.partition(":")
    return {n.strip() for n in names.split(",") if n.strip()}, reason.strip()


def violations(ref: str, obj: dict[str, Any]) -> list[str]:
    """Every restricted-profile violation of one workload object, one line each."""
    meta, pod = pod_template(obj)
    excepted, reason = _exceptions(meta)
    found: list[str] = []
    unknown = excepted - set(CHECKS) - set(POD_CHECKS)
    if unknown or (excepted and not reason):
        found.append(
            f"{ref}: {EXCEPTION_ANNOTATION} must be '<check>,...: <reason>' with checks "
            f"from {sorted({*CHECKS, *POD_CHECKS})}; got {sorted(unknown)} / {reason!r}"
        )
    for name, pod_ok in POD_CHECKS.items():
        if name not in excepted and not pod_ok(pod):
            found.append(f"{ref}: pod: {name}")
    containers = [("initContainer", c) for c in pod.get("initContainers") or []]
    containers += [("container", c) for c in pod.get("containers") or []]
    for role, container in containers:
        for name, ok in CHECKS.items():
            if name not in excepted and not ok(pod, container):
                found.append(f"{ref}: {role} {container.get('name')}: {name}")
    return found


@pytest.mark.parametrize("target", TARGETS)
def test_every_container_meets_restricted(project: Project, target: str) -> None:
    workloads = [o for o in render(project, target) if o.kind in WORKLOAD_KINDS]
    assert workloads, f"{target}: no workload rendered"
    problems = [line for w in workloads for line in violations(f"{w.ref} ({w.source})", w.obj)]
    assert not problems, f"{target}: {len(problems)} violation(s):\n" + "\n".join(problems)


@pytest.mark.parametrize("target", [t for t in TARGETS if t != "monitoring"])
def test_app_namespace_enforces_restricted(project: Project, target: str) -> None:
    namespaces = [o for o in render(project, target) if o.kind == "Namespace"]
    assert namespaces, f"{target}: renders no Namespace"
    for ns in namespaces:
        labels = ns.obj["metadata"].get("labels") or {}
        level = labels.get("pod-security.kubernetes.io/enforce")
        assert level == "restricted", f"{ns.ref}: pod-security enforce is {level!r}"


BAD_DEPLOYMENT: dict[str, Any] = {
    "kind": "Deployment",
    "spec": {
        "template": {
            "metadata": {},
            "spec": {
                "hostNetwork": True,
                "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
                "initContainers": [{"name": "init", "securityContext": {"runAsNonRoot": True}}],
                "containers": [
                    {
                        "name": "app",
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 0,
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]},
                            "seccompProfile": {"type": "Unconfined"},
                            "readOnlyRootFilesystem": True,
                        },
                    }
                ],
            },
        }
    },
}


def test_checker_lists_every_violation_with_object_and_container() -> None:
    assert violations("Deployment/x/bad", BAD_DEPLOYMENT) == [
        "Deployment/x/bad: pod: hostNamespaces",
        "Deployment/x/bad: pod: hostPath",
        "Deployment/x/bad: initContainer init: allowPrivilegeEscalation",
        "Deployment/x/bad: initContainer init: capabilities",
        "Deployment/x/bad: initContainer init: seccompProfile",
        "Deployment/x/bad: initContainer init: readOnlyRootFilesystem",
        "Deployment/x/bad: container app: runAsNonRoot",
        "Deployment/x/bad: container app: capabilities",
        "Deployment/x/bad: container app: seccompProfile",
    ]


def test_exception_annotation_needs_a_reason_and_known_checks() -> None:
    meta = {"annotations": {EXCEPTION_ANNOTATION: "hostPath,readOnlyRootFilesystm"}}
    obj = {"kind": "Pod", "metadata": meta, "spec": {"containers": []}}
    [problem] = violations("Pod/x/p", obj)
    assert "readOnlyRootFilesystm" in problem and "''" in problem
    meta["annotations"][EXCEPTION_ANNOTATION] = "hostPath: reads the host's /proc"
    obj["spec"]["volumes"] = [{"name": "proc", "hostPath": {"path": "/proc"}}]
    assert violations("Pod/x/p", obj) == []
