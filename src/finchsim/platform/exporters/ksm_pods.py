"""kube_pod_* families, as kube-state-metrics v2 writes them (`internal/store/pod.go`).

Every family carries `namespace`, `pod`, `uid` first (descPodLabelsDefaultLabels). Per-
container families follow `status.containerStatuses` (not the spec), so a pod the kubelet has
not reported yet has none; `*_reason` families have a series only while the container is in
that state, valued 1."""

from __future__ import annotations

from collections.abc import Sequence

from finchsim.platform.exporters.families import (
    Family,
    Obj,
    Samples,
    allowed_labels,
    conditions,
    meta,
    resource_values,
    spec,
    status,
    unix,
)

POD = ("namespace", "pod", "uid")
CONTAINER = (*POD, "container")
PHASES = ("Pending", "Succeeded", "Failed", "Unknown", "Running")
# podStatusReasons in pod.go.
STATUS_REASONS = ("Evicted", "NodeAffinity", "NodeLost", "Shutdown", "UnexpectedAdmissionError")


def _f(name: str, help: str, labels: Sequence[str], kind: str = "gauge") -> Family:
    return Family(name, help, tuple(labels), kind)


FAMILIES: tuple[Family, ...] = (
    _f(
        "kube_pod_info",
        "Information about pod.",
        (
            *POD,
            "host_ip",
            "pod_ip",
            "node",
            "created_by_kind",
            "created_by_name",
            "priority_class",
            "host_network",
        ),
    ),
    _f(
        "kube_pod_owner",
        "Information about the Pod's owner.",
        (*POD, "owner_kind", "owner_name", "owner_is_controller"),
    ),
    Family(
        "kube_pod_labels", "Kubernetes labels converted to Prometheus labels.", POD, dynamic=True
    ),
    _f("kube_pod_created", "Unix creation timestamp", POD),
    _f("kube_pod_start_time", "Start time in unix timestamp for a pod.", POD),
    _f("kube_pod_completion_time", "Completion time in unix timestamp for a pod.", POD),
    _f("kube_pod_deletion_timestamp", "Unix deletion timestamp", POD),
    _f("kube_pod_status_phase", "The pods current phase.", (*POD, "phase")),
    _f(
        "kube_pod_status_ready",
        "Describes whether the pod is ready to serve requests.",
        (*POD, "condition"),
    ),
    _f(
        "kube_pod_status_scheduled",
        "Describes the status of the scheduling process for the pod.",
        (*POD, "condition"),
    ),
    _f("kube_pod_status_unschedulable", "Describes the unschedulable status for the pod.", POD),
    _f("kube_pod_status_reason", "The pod status reasons", (*POD, "reason")),
    _f(
        "kube_pod_container_info",
        "Information about a container in a pod.",
        (*CONTAINER, "image_spec", "image", "image_id", "container_id"),
    ),
    _f(
        "kube_pod_container_status_ready",
        "Describes whether the containers readiness check succeeded.",
        CONTAINER,
    ),
    _f(
        "kube_pod_container_status_running",
        "Describes whether the container is currently in running state.",
        CONTAINER,
    ),
    _f(
        "kube_pod_container_status_terminated",
        "Describes whether the container is currently in terminated state.",
        CONTAINER,
    ),
    _f(
        "kube_pod_container_status_waiting",
        "Describes whether the container is currently in waiting state.",
        CONTAINER,
    ),
    _f(
        "kube_pod_container_status_restarts_total",
        "The number of container restarts per container.",
        CONTAINER,
        "counter",
    ),
    _f(
        "kube_pod_container_status_waiting_reason",
        "Describes the reason the container is currently in waiting state.",
        (*CONTAINER, "reason"),
    ),
    _f(
        "kube_pod_container_status_terminated_reason",
        "Describes the reason the container is currently in terminated state.",
        (*CONTAINER, "reason"),
    ),
    _f(
        "kube_pod_container_status_last_terminated_reason",
        "Describes the last reason the container was in terminated state.",
        (*CONTAINER, "reason"),
    ),
    _f(
        "kube_pod_container_status_last_terminated_exitcode",
        "Describes the exit code for the last container in terminated state.",
        CONTAINER,
    ),
    _f(
        "kube_pod_container_state_started",
        "Start time in unix timestamp for a pod container.",
        CONTAINER,
    ),
    _f(
        "kube_pod_container_resource_requests",
        "The number of requested request resource by a container.",
        (*CONTAINER, "node", "resource", "unit"),
    ),
    _f(
        "kube_pod_container_resource_limits",
        "The number of requested limit resource by a container.",
        (*CONTAINER, "node", "resource", "unit"),
    ),
    _f(
        "kube_pod_init_container_status_waiting_reason",
        "Describes the reason the init container is currently in waiting state.",
        (*CONTAINER, "reason"),
    ),
    _f(
        "kube_pod_init_container_status_terminated_reason",
        "Describes the reason the init container is currently in terminated state.",
        (*CONTAINER, "reason"),
    ),
    _f(
        "kube_pod_init_container_status_restarts_total",
        "The number of restarts for the init container.",
        CONTAINER,
        "counter",
    ),
    _f(
        "kube_pod_spec_volumes_persistentvolumeclaims_info",
        "Information about persistentvolumeclaim volumes in a pod.",
        (*POD, "volume", "persistentvolumeclaim"),
    ),
)


def add_pod(pod: Obj, out: Samples, label_allowlist: Sequence[str] = ()) -> None:
    """Every kube_pod_* sample of one Pod (as the API returns it, JSON)."""
    m, s, st = meta(pod), spec(pod), status(pod)
    key = (m.get("namespace", ""), m.get("name", ""), m.get("uid", ""))
    node = s.get("nodeName") or ""

    controller = next((r for r in m.get("ownerReferences") or [] if r.get("controller")), None)
    out.add(
        "kube_pod_info",
        (
            *key,
            st.get("hostIP") or "",
            st.get("podIP") or "",
            node,
            (controller or {}).get("kind") or "<none>",
            (controller or {}).get("name") or "<none>",
            s.get("priorityClassName") or "",
            str(bool(s.get("hostNetwork"))).lower(),
        ),
        1,
    )
    owners = m.get("ownerReferences") or []
    if not owners:
        out.add("kube_pod_owner", (*key, "<none>", "<none>", "<none>"), 1)
    for ref in owners:
        is_controller = str(bool(ref.get("controller"))).lower()
        out.add(
            "kube_pod_owner", (*key, ref.get("kind", ""), ref.get("name", ""), is_controller), 1
        )
    out.add("kube_pod_labels", key, 1, allowed_labels(m.get("labels"), label_allowlist))

    for family, when in (
        ("kube_pod_created", m.get("creationTimestamp")),
        ("kube_pod_start_time", st.get("startTime")),
        ("kube_pod_deletion_timestamp", m.get("deletionTimestamp")),
    ):
        stamp = unix(when)
        if stamp is not None:
            out.add(family, key, stamp)
    finished = [
        unix((c.get("state") or {}).get("terminated", {}).get("finishedAt"))
        for c in st.get("containerStatuses") or []
    ]
    done = [f for f in finished if f]
    if done:
        out.add("kube_pod_completion_time", key, max(done))

    phase = st.get("phase") or ""
    if phase:
        for name in PHASES:
            out.add("kube_pod_status_phase", (*key, name), float(phase == name))
    for cond in st.get("conditions") or []:
        if cond.get("type") == "Ready":
            for cstatus, v in conditions(cond.get("status")):
                out.add("kube_pod_status_ready", (*key, cstatus), v)
        if cond.get("type") == "PodScheduled":
            for cstatus, v in conditions(cond.get("status")):
                out.add("kube_pod_status_scheduled", (*key, cstatus), v)
            if cond.get("status") == "False":
                out.add("kube_pod_status_unschedulable", key, 1)
    for reason in STATUS_REASONS:
        out.add("kube_pod_status_reason", (*key, reason), float(st.get("reason") == reason))

    specs = {c["name"]: c for c in s.get("containers") or []}
    for cs in st.get("containerStatuses") or []:
        _container_status(cs, specs.get(cs.get("name", ""), {}), key, out, init=False)
    for cs in st.get("initContainerStatuses") or []:
        _container_status(cs, {}, key, out, init=True)

    for c in s.get("containers") or []:
        resources = c.get("resources") or {}
        for family, field in (
            ("kube_pod_container_resource_requests", "requests"),
            ("kube_pod_container_resource_limits", "limits"),
        ):
            for resource, unit, value in resource_values(resources.get(field)):
                out.add(family, (*key, c["name"], node, resource, unit), value)
    for v in s.get("volumes") or []:
        claim = v.get("persistentVolumeClaim")
        if claim:
            out.add(
                "kube_pod_spec_volumes_persistentvolumeclaims_info",
                (*key, v.get("name", ""), claim.get("claimName", "")),
                1,
            )


def _container_status(
    cs: Obj, container_spec: Obj, key: tuple[str, str, str], out: Samples, *, init: bool
) -> None:
    name = cs.get("name", "")
    ckey = (*key, name)
    state = cs.get("state") or {}
    waiting, running, terminated = (
        state.get("waiting"),
        state.get("running"),
        state.get("terminated"),
    )
    last = (cs.get("lastState") or {}).get("terminated")
    if init:
        out.add("kube_pod_init_container_status_restarts_total", ckey, cs.get("restartCount") or 0)
        if waiting is not None:
            out.add(
                "kube_pod_init_container_status_waiting_reason",
                (*ckey, waiting.get("reason") or ""),
                1,
            )
        if terminated is not None:
            reason = terminated.get("reason") or ""
            out.add("kube_pod_init_container_status_terminated_reason", (*ckey, reason), 1)
        return
    out.add(
        "kube_pod_container_info",
        (
            *ckey,
            container_spec.get("image") or "",
            cs.get("image") or "",
            cs.get("imageID") or "",
            cs.get("containerID") or "",
        ),
        1,
    )
    out.add("kube_pod_container_status_ready", ckey, float(bool(cs.get("ready"))))
    out.add("kube_pod_container_status_running", ckey, float(running is not None))
    out.add("kube_pod_container_status_terminated", ckey, float(terminated is not None))
    out.add("kube_pod_container_status_waiting", ckey, float(waiting is not None))
    out.add("kube_pod_container_status_restarts_total", ckey, cs.get("restartCount") or 0)
    if waiting is not None:
        out.add("kube_pod_container_status_waiting_reason", (*ckey, waiting.get("reason") or ""), 1)
    if terminated is not None:
        out.add(
            "kube_pod_container_status_terminated_reason",
            (*ckey, terminated.get("reason") or ""),
            1,
        )
    if last is not None:
        out.add(
            "kube_pod_container_status_last_terminated_reason", (*ckey, last.get("reason") or ""), 1
        )
        out.add(
            "kube_pod_container_status_last_terminated_exitcode", ckey, last.get("exitCode") or 0
        )
    started = (running or terminated or {}).get("startedAt")
    stamp = unix(started)
    if stamp is not None:
        out.add("kube_pod_container_state_started", ckey, stamp)
