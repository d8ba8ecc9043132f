"""kube_node_*, kube_namespace_*, kube_persistentvolumeclaim_*, kube_resourcequota*,
kube_cronjob_* and kube_job_* families, as kube-state-metrics v2 writes them
(`internal/store/node.go`, `namespace.go`, `persistentvolumeclaim.go`, `resourcequota.go`,
`cronjob.go`, `job.go`). Jobs are labelled `job_name`, not `job` (which Prometheus owns)."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime

from croniter import croniter

from finchsim.platform.exporters.families import (
    Family,
    Obj,
    Samples,
    conditions,
    meta,
    milli_value,
    resource_values,
    spec,
    status,
    unix,
    whole_value,
)

NS = ("namespace",)
PVC = ("namespace", "persistentvolumeclaim")
RQ = ("namespace", "resourcequota")
CJ = ("namespace", "cronjob")
JOB = ("namespace", "job_name")
# jobFailureReasons in job.go.
JOB_FAILURE_REASONS = ("BackoffLimitExceeded", "DeadlineExceeded", "Evicted")

FAMILIES: tuple[Family, ...] = (
    Family("kube_node_created", "Unix creation timestamp", ("node",)),
    Family(
        "kube_node_info",
        "Information about a cluster node.",
        (
            "node",
            "kernel_version",
            "os_image",
            "container_runtime_version",
            "kubelet_version",
            "kubeproxy_version",
            "provider_id",
            "pod_cidr",
            "system_uuid",
            "internal_ip",
        ),
    ),
    Family("kube_node_role", "The role of a cluster node.", ("node", "role")),
    Family(
        "kube_node_spec_taint", "The taint of a cluster node.", ("node", "key", "value", "effect")
    ),
    Family("kube_node_spec_unschedulable", "Whether a node can schedule new pods.", ("node",)),
    Family(
        "kube_node_status_allocatable",
        "The allocatable for different resources of a node that are available for scheduling.",
        ("node", "resource", "unit"),
    ),
    Family(
        "kube_node_status_capacity",
        "The capacity for different resources of a node.",
        ("node", "resource", "unit"),
    ),
    Family(
        "kube_node_status_condition",
        "The condition of a cluster node.",
        ("node", "condition", "status"),
    ),
    Family("kube_namespace_created", "Unix creation timestamp", NS),
    Family("kube_namespace_status_phase", "kubernetes namespace status phase.", (*NS, "phase")),
    Family(
        "kube_persistentvolumeclaim_info",
        "Information about persistent volume claim.",
        (*PVC, "storageclass", "volumename", "volumemode"),
    ),
    Family(
        "kube_persistentvolumeclaim_status_phase",
        "The phase the persistent volume claim is currently in.",
        (*PVC, "phase"),
    ),
    Family(
        "kube_persistentvolumeclaim_resource_requests_storage_bytes",
        "The capacity of storage requested by the persistent volume claim.",
        PVC,
    ),
    Family(
        "kube_persistentvolumeclaim_access_mode",
        "The access mode(s) specified by the persistent volume claim.",
        (*PVC, "access_mode"),
    ),
    Family(
        "kube_persistentvolumeclaim_status_condition",
        "Information about status of different conditions of persistent volume claim.",
        (*PVC, "condition", "status"),
    ),
    Family("kube_persistentvolumeclaim_created", "Unix creation timestamp", PVC),
    Family("kube_resourcequota_created", "Unix creation timestamp", RQ),
    Family("kube_resourcequota", "Information about resource quota.", (*RQ, "resource", "type")),
    Family(
        "kube_cronjob_info",
        "Info about cronjob.",
        (*CJ, "schedule", "concurrency_policy", "timezone"),
    ),
    Family("kube_cronjob_created", "Unix creation timestamp", CJ),
    Family("kube_cronjob_status_active", "Active holds pointers to currently running jobs.", CJ),
    Family(
        "kube_cronjob_status_last_schedule_time",
        "LastScheduleTime keeps information of when was the last time the job was "
        "successfully scheduled.",
        CJ,
    ),
    Family(
        "kube_cronjob_status_last_successful_time",
        "LastSuccessfulTime keeps information of when was the last time the job was "
        "completed successfully.",
        CJ,
    ),
    Family(
        "kube_cronjob_spec_suspend",
        "Suspend flag tells the controller to suspend subsequent executions.",
        CJ,
    ),
    Family(
        "kube_cronjob_spec_starting_deadline_seconds",
        "Deadline in seconds for starting the job if it misses scheduled time for any reason.",
        CJ,
    ),
    Family(
        "kube_cronjob_next_schedule_time",
        "Next time the cronjob should be scheduled. The time after lastScheduleTime, or after "
        "the cron job's creation time if it's never been scheduled. Use this to determine if "
        "the job is delayed.",
        CJ,
    ),
    Family(
        "kube_cronjob_metadata_resource_version",
        "Resource version representing a specific version of the cronjob.",
        CJ,
    ),
    Family(
        "kube_cronjob_spec_successful_job_history_limit",
        "Successful job history limit tells the controller how many completed jobs should be "
        "preserved.",
        CJ,
    ),
    Family(
        "kube_cronjob_spec_failed_job_history_limit",
        "Failed job history limit tells the controller how many failed jobs should be preserved.",
        CJ,
    ),
    Family("kube_job_info", "Information about job.", JOB),
    Family("kube_job_created", "Unix creation timestamp", JOB),
    Family(
        "kube_job_owner",
        "Information about the Job's owner.",
        (*JOB, "owner_kind", "owner_name", "owner_is_controller"),
    ),
    Family(
        "kube_job_spec_parallelism",
        "The maximum desired number of pods the job should run at any given time.",
        JOB,
    ),
    Family(
        "kube_job_spec_completions",
        "The desired number of successfully finished pods the job should be run with.",
        JOB,
    ),
    Family(
        "kube_job_spec_active_deadline_seconds",
        "The duration in seconds relative to the startTime that the job may be active before "
        "the system tries to terminate it.",
        JOB,
    ),
    Family("kube_job_status_succeeded", "The number of pods which reached Phase Succeeded.", JOB),
    Family(
        "kube_job_status_failed",
        "The number of pods which reached Phase Failed and the reason for failure.",
        (*JOB, "reason"),
    ),
    Family("kube_job_status_active", "The number of actively running pods.", JOB),
    Family("kube_job_status_ready", "The number of ready pods that belong to this Job.", JOB),
    Family("kube_job_complete", "The job has completed its execution.", (*JOB, "condition")),
    Family("kube_job_failed", "The job has failed its execution.", (*JOB, "condition")),
    Family(
        "kube_job_status_start_time",
        "StartTime represents time when the job was acknowledged by the Job Manager.",
        JOB,
    ),
    Family(
        "kube_job_status_completion_time",
        "CompletionTime represents time when the job was completed.",
        JOB,
    ),
)


def add_node(node: Obj, out: Samples) -> None:
    m, s, st = meta(node), spec(node), status(node)
    name = m.get("name", "")
    created = unix(m.get("creationTimestamp"))
    if created is not None:
        out.add("kube_node_created", (name,), created)
    info = st.get("nodeInfo") or {}
    internal = [a["address"] for a in st.get("addresses") or [] if a.get("type") == "InternalIP"]
    out.add(
        "kube_node_info",
        (
            name,
            info.get("kernelVersion", ""),
            info.get("osImage", ""),
            info.get("containerRuntimeVersion", ""),
            info.get("kubeletVersion", ""),
            info.get("kubeProxyVersion", ""),
            s.get("providerID", ""),
            s.get("podCIDR", ""),
            info.get("systemUUID", ""),
            internal[-1] if internal else "",
        ),
        1,
    )
    for label in m.get("labels") or {}:
        if label.startswith("node-role.kubernetes.io/"):
            out.add("kube_node_role", (name, label.removeprefix("node-role.kubernetes.io/")), 1)
    for taint in s.get("taints") or []:
        values = (name, taint.get("key", ""), taint.get("value", ""), taint.get("effect", ""))
        out.add("kube_node_spec_taint", values, 1)
    out.add("kube_node_spec_unschedulable", (name,), float(bool(s.get("unschedulable"))))
    for family, field in (
        ("kube_node_status_allocatable", "allocatable"),
        ("kube_node_status_capacity", "capacity"),
    ):
        for resource, unit, value in resource_values(st.get(field), memory_milli=True):
            out.add(family, (name, resource, unit), value)
    for cond in st.get("conditions") or []:
        for cstatus, v in conditions(cond.get("status")):
            out.add("kube_node_status_condition", (name, cond.get("type", ""), cstatus), v)


def add_namespace(ns: Obj, out: Samples) -> None:
    m = meta(ns)
    key = (m.get("name", ""),)
    created = unix(m.get("creationTimestamp"))
    if created is not None:
        out.add("kube_namespace_created", key, created)
    phase = status(ns).get("phase")
    for candidate in ("Active", "Terminating"):
        out.add("kube_namespace_status_phase", (*key, candidate), float(phase == candidate))


def add_pvc(pvc: Obj, out: Samples) -> None:
    m, s, st = meta(pvc), spec(pvc), status(pvc)
    key = (m.get("namespace", ""), m.get("name", ""))
    annotations = m.get("annotations") or {}
    storage_class = str(
        annotations.get("volume.beta.kubernetes.io/storage-class")
        or s.get("storageClassName")
        or "<none>"
    )
    volume_info = (storage_class, s.get("volumeName") or "", s.get("volumeMode") or "")
    out.add("kube_persistentvolumeclaim_info", (*key, *volume_info), 1)
    phase = st.get("phase")
    if phase:
        for candidate in ("Lost", "Bound", "Pending"):
            out.add(
                "kube_persistentvolumeclaim_status_phase",
                (*key, candidate),
                float(phase == candidate),
            )
    storage = ((s.get("resources") or {}).get("requests") or {}).get("storage")
    if storage is not None:
        out.add(
            "kube_persistentvolumeclaim_resource_requests_storage_bytes", key, whole_value(storage)
        )
    for mode in s.get("accessModes") or []:
        out.add("kube_persistentvolumeclaim_access_mode", (*key, mode), 1)
    for cond in st.get("conditions") or []:
        for cstatus, v in conditions(cond.get("status")):
            family = "kube_persistentvolumeclaim_status_condition"
            out.add(family, (*key, cond.get("type", ""), cstatus), v)
    created = unix(m.get("creationTimestamp"))
    if created is not None:
        out.add("kube_persistentvolumeclaim_created", key, created)


def add_resourcequota(rq: Obj, out: Samples) -> None:
    m, st = meta(rq), status(rq)
    key = (m.get("namespace", ""), m.get("name", ""))
    created = unix(m.get("creationTimestamp"))
    if created is not None:
        out.add("kube_resourcequota_created", key, created)
    for kind, field in (("hard", "hard"), ("used", "used")):
        for resource, quantity in (st.get(field) or {}).items():
            out.add("kube_resourcequota", (*key, resource, kind), milli_value(quantity))


def next_schedule(schedule: str, after: float, time_zone: str | None) -> float:
    """getNextScheduledTime: the first firing of `schedule` after `after` (Unix seconds), in
    `time_zone` (the exporter's local zone when None, as kube-state-metrics')."""
    tz = zoneinfo.ZoneInfo(time_zone) if time_zone else datetime.now().astimezone().tzinfo
    start = datetime.fromtimestamp(after, tz=tz or UTC)
    return float(croniter(schedule, start).get_next(float))


def add_cronjob(cj: Obj, out: Samples) -> None:
    m, s, st = meta(cj), spec(cj), status(cj)
    key = (m.get("namespace", ""), m.get("name", ""))
    tz = s.get("timeZone")
    values = (s.get("schedule", ""), s.get("concurrencyPolicy", ""), tz or "local")
    out.add("kube_cronjob_info", (*key, *values), 1)
    created = unix(m.get("creationTimestamp"))
    if created is not None:
        out.add("kube_cronjob_created", key, created)
    out.add("kube_cronjob_status_active", key, len(st.get("active") or []))
    last_schedule = unix(st.get("lastScheduleTime"))
    for family, stamp in (
        ("kube_cronjob_status_last_schedule_time", last_schedule),
        ("kube_cronjob_status_last_successful_time", unix(st.get("lastSuccessfulTime"))),
    ):
        if stamp is not None:
            out.add(family, key, stamp)
    if s.get("suspend") is not None:
        out.add("kube_cronjob_spec_suspend", key, float(bool(s["suspend"])))
    for family, field in (
        ("kube_cronjob_spec_starting_deadline_seconds", "startingDeadlineSeconds"),
        ("kube_cronjob_spec_successful_job_history_limit", "successfulJobsHistoryLimit"),
        ("kube_cronjob_spec_failed_job_history_limit", "failedJobsHistoryLimit"),
    ):
        if s.get(field) is not None:
            out.add(family, key, s[field])
    after = last_schedule if last_schedule is not None else created
    if after is not None and not s.get("suspend"):
        out.add("kube_cronjob_next_schedule_time", key, next_schedule(s["schedule"], after, tz))
    version = m.get("resourceVersion", "")
    if version.isdigit():
        out.add("kube_cronjob_metadata_resource_version", key, float(version))


def add_job(job: Obj, out: Samples) -> None:
    m, s, st = meta(job), spec(job), status(job)
    key = (m.get("namespace", ""), m.get("name", ""))
    out.add("kube_job_info", key, 1)
    created = unix(m.get("creationTimestamp"))
    if created is not None:
        out.add("kube_job_created", key, created)
    owners = m.get("ownerReferences") or []
    if not owners:
        out.add("kube_job_owner", (*key, "", "", ""), 1)
    for ref in owners:
        is_controller = str(bool(ref.get("controller"))).lower()
        out.add(
            "kube_job_owner", (*key, ref.get("kind", ""), ref.get("name", ""), is_controller), 1
        )
    for family, field in (
        ("kube_job_spec_parallelism", "parallelism"),
        ("kube_job_spec_completions", "completions"),
        ("kube_job_spec_active_deadline_seconds", "activeDeadlineSeconds"),
    ):
        if s.get(field) is not None:
            out.add(family, key, s[field])
    out.add("kube_job_status_succeeded", key, st.get("succeeded") or 0)
    _job_failed(st, key, out)
    out.add("kube_job_status_active", key, st.get("active") or 0)
    out.add("kube_job_status_ready", key, st.get("ready") or 0)
    for cond in st.get("conditions") or []:
        family = {"Complete": "kube_job_complete", "Failed": "kube_job_failed"}.get(
            str(cond.get("type")), ""
        )
        if family:
            for cstatus, v in conditions(cond.get("status")):
                out.add(family, (*key, cstatus), v)
    for family, field in (
        ("kube_job_status_start_time", "startTime"),
        ("kube_job_status_completion_time", "completionTime"),
    ):
        stamp = unix(st.get(field))
        if stamp is not None:
            out.add(family, key, stamp)


def _job_failed(st: Obj, key: tuple[str, str], out: Samples) -> None:
    """kube_job_status_failed: the failed pod count with reason="" while no Failed condition
    names a known reason; a Failed condition gives one 0/1 series per known reason."""
    failed = st.get("failed") or 0
    if failed == 0:
        out.add("kube_job_status_failed", (*key, ""), 0)
        return
    known = False
    for cond in st.get("conditions") or []:
        if cond.get("type") == "Failed":
            for reason in JOB_FAILURE_REASONS:
                matches = cond.get("reason") == reason
                known = known or matches
                out.add("kube_job_status_failed", (*key, reason), float(matches))
    if not known:
        out.add("kube_job_status_failed", (*key, ""), failed)
