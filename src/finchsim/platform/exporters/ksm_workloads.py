"""kube_deployment_*, kube_statefulset_* and kube_horizontalpodautoscaler_* families, as
kube-state-metrics v2 writes them (`internal/store/deployment.go`, `statefulset.go`,
`horizontalpodautoscaler.go`). Status counters the controllers leave unset are 0, as Go's zero
values; `spec.replicas` is always set by the API's defaulting."""

from __future__ import annotations

import math
from collections.abc import Sequence

from finchsim.platform.exporters.families import (
    Family,
    Obj,
    Samples,
    allowed_labels,
    conditions,
    meta,
    milli_value,
    spec,
    status,
    unix,
)

DEP = ("namespace", "deployment")
STS = ("namespace", "statefulset")
HPA = ("namespace", "horizontalpodautoscaler")

_DEPLOYMENT_COUNTS = {
    "kube_deployment_status_replicas": ("replicas", "The number of replicas per deployment."),
    "kube_deployment_status_replicas_ready": (
        "readyReplicas",
        "The number of ready replicas per deployment.",
    ),
    "kube_deployment_status_replicas_available": (
        "availableReplicas",
        "The number of available replicas per deployment.",
    ),
    "kube_deployment_status_replicas_unavailable": (
        "unavailableReplicas",
        "The number of unavailable replicas per deployment.",
    ),
    "kube_deployment_status_replicas_updated": (
        "updatedReplicas",
        "The number of updated replicas per deployment.",
    ),
    "kube_deployment_status_observed_generation": (
        "observedGeneration",
        "The generation observed by the deployment controller.",
    ),
}
_STATEFULSET_COUNTS = {
    "kube_statefulset_status_replicas": ("replicas", "The number of replicas per StatefulSet."),
    "kube_statefulset_status_replicas_available": (
        "availableReplicas",
        "The number of available replicas per StatefulSet.",
    ),
    "kube_statefulset_status_replicas_current": (
        "currentReplicas",
        "The number of current replicas per StatefulSet.",
    ),
    "kube_statefulset_status_replicas_ready": (
        "readyReplicas",
        "The number of ready replicas per StatefulSet.",
    ),
    "kube_statefulset_status_replicas_updated": (
        "updatedReplicas",
        "The number of updated replicas per StatefulSet.",
    ),
    "kube_statefulset_status_observed_generation": (
        "observedGeneration",
        "The generation observed by the StatefulSet controller.",
    ),
}

FAMILIES: tuple[Family, ...] = (
    Family("kube_deployment_created", "Unix creation timestamp", DEP),
    *(Family(n, h, DEP) for n, (_, h) in _DEPLOYMENT_COUNTS.items()),
    Family(
        "kube_deployment_status_condition",
        "The current status conditions of a deployment.",
        (*DEP, "reason", "condition", "status"),
    ),
    Family("kube_deployment_spec_replicas", "Number of desired pods for a deployment.", DEP),
    Family(
        "kube_deployment_spec_paused",
        "Whether the deployment is paused and will not be processed by the deployment controller.",
        DEP,
    ),
    Family(
        "kube_deployment_spec_strategy_rollingupdate_max_unavailable",
        "Maximum number of unavailable replicas during a rolling update of a deployment.",
        DEP,
    ),
    Family(
        "kube_deployment_spec_strategy_rollingupdate_max_surge",
        "Maximum number of replicas that can be scheduled above the desired number of "
        "replicas during a rolling update of a deployment.",
        DEP,
    ),
    Family(
        "kube_deployment_metadata_generation",
        "Sequence number representing a specific generation of the desired state.",
        DEP,
    ),
    Family(
        "kube_deployment_labels",
        "Kubernetes labels converted to Prometheus labels.",
        DEP,
        dynamic=True,
    ),
    Family("kube_statefulset_created", "Unix creation timestamp", STS),
    *(Family(n, h, STS) for n, (_, h) in _STATEFULSET_COUNTS.items()),
    Family("kube_statefulset_replicas", "Number of desired pods for a StatefulSet.", STS),
    Family(
        "kube_statefulset_metadata_generation",
        "Sequence number representing a specific generation of the desired state for the "
        "StatefulSet.",
        STS,
    ),
    Family(
        "kube_statefulset_status_current_revision",
        "Indicates the version of the StatefulSet used to generate Pods in the sequence "
        "[0,currentReplicas).",
        (*STS, "revision"),
    ),
    Family(
        "kube_statefulset_status_update_revision",
        "Indicates the version of the StatefulSet used to generate Pods in the sequence "
        "[replicas-updatedReplicas,replicas)",
        (*STS, "revision"),
    ),
    Family(
        "kube_horizontalpodautoscaler_info",
        "Information about this autoscaler.",
        (*HPA, "scaletargetref_api_version", "scaletargetref_kind", "scaletargetref_name"),
    ),
    Family(
        "kube_horizontalpodautoscaler_metadata_generation",
        "The generation observed by the HorizontalPodAutoscaler controller.",
        HPA,
    ),
    Family(
        "kube_horizontalpodautoscaler_spec_max_replicas",
        "Upper limit for the number of pods that can be set by the autoscaler; cannot be "
        "smaller than MinReplicas.",
        HPA,
    ),
    Family(
        "kube_horizontalpodautoscaler_spec_min_replicas",
        "Lower limit for the number of pods that can be set by the autoscaler, default 1.",
        HPA,
    ),
    Family(
        "kube_horizontalpodautoscaler_spec_target_metric",
        "The metric specifications used by this autoscaler when calculating the desired "
        "replica count.",
        (*HPA, "metric_name", "metric_target_type"),
    ),
    Family(
        "kube_horizontalpodautoscaler_status_target_metric",
        "The current metric status used by this autoscaler when calculating the desired "
        "replica count.",
        (*HPA, "metric_name", "metric_target_type"),
    ),
    Family(
        "kube_horizontalpodautoscaler_status_current_replicas",
        "Current number of replicas of pods managed by this autoscaler.",
        HPA,
    ),
    Family(
        "kube_horizontalpodautoscaler_status_desired_replicas",
        "Desired number of replicas of pods managed by this autoscaler.",
        HPA,
    ),
    Family(
        "kube_horizontalpodautoscaler_status_condition",
        "The condition of this autoscaler.",
        (*HPA, "condition", "status"),
    ),
)


def scaled(value: int | str | None, total: int, *, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an int as is, "25%" of `total` rounded up
    (maxSurge) or down (maxUnavailable)."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    percent = int(value.rstrip("%"))
    exact = percent * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def add_deployment(d: Obj, out: Samples, label_allowlist: Sequence[str] = ()) -> None:
    m, s, st = meta(d), spec(d), status(d)
    key = (m.get("namespace", ""), m.get("name", ""))
    created = unix(m.get("creationTimestamp"))
    if created is not None:
        out.add("kube_deployment_created", key, created)
    for family, (field, _) in _DEPLOYMENT_COUNTS.items():
        out.add(family, key, st.get(field) or 0)
    for cond in st.get("conditions") or []:
        for cstatus, v in conditions(cond.get("status")):
            out.add(
                "kube_deployment_status_condition",
                (*key, cond.get("reason") or "", cond.get("type", ""), cstatus),
                v,
            )
    replicas = s.get("replicas", 1)
    out.add("kube_deployment_spec_replicas", key, replicas)
    out.add("kube_deployment_spec_paused", key, float(bool(s.get("paused"))))
    rolling = (s.get("strategy") or {}).get("rollingUpdate")
    if rolling is not None:
        out.add(
            "kube_deployment_spec_strategy_rollingupdate_max_unavailable",
            key,
            scaled(rolling.get("maxUnavailable"), replicas, round_up=False),
        )
        out.add(
            "kube_deployment_spec_strategy_rollingupdate_max_surge",
            key,
            scaled(rolling.get("maxSurge"), replicas, round_up=True),
        )
    out.add("kube_deployment_metadata_generation", key, m.get("generation") or 0)
    out.add("kube_deployment_labels", key, 1, allowed_labels(m.get("labels"), label_allowlist))


def add_statefulset(sts: Obj, out: Samples) -> None:
    m, s, st = meta(sts), spec(sts), status(sts)
    key = (m.get("namespace", ""), m.get("name", ""))
    created = unix(m.get("creationTimestamp"))
    if created is not None:
        out.add("kube_statefulset_created", key, created)
    for family, (field, _) in _STATEFULSET_COUNTS.items():
        out.add(family, key, st.get(field) or 0)
    if s.get("replicas") is not None:
        out.add("kube_statefulset_replicas", key, s["replicas"])
    out.add("kube_statefulset_metadata_generation", key, m.get("generation") or 0)
    revision = st.get("currentRevision") or ""
    out.add("kube_statefulset_status_current_revision", (*key, revision), 1)
    out.add("kube_statefulset_status_update_revision", (*key, st.get("updateRevision") or ""), 1)


def _metric_values(source: Obj, field: str) -> tuple[str, list[tuple[str, float]]]:
    """(metric_name, [(metric_target_type, value)]) of one autoscaling/v2 MetricSpec or
    MetricStatus (`field` is "target" or "current"); types other than Pods, Resource and
    External are skipped, as createHPASpecTarget/createHPAStatusTargetMetric do."""
    kind = source.get("type")
    part = {"Pods": "pods", "Resource": "resource", "External": "external"}.get(str(kind))
    if part is None:
        return "", []
    block = source.get(part) or {}
    name = block.get("name") if part == "resource" else (block.get("metric") or {}).get("name")
    target = block.get(field) or {}
    values: list[tuple[str, float]] = []
    if target.get("value") is not None:
        values.append(("value", milli_value(target["value"])))
    if target.get("averageValue") is not None:
        values.append(("average", milli_value(target["averageValue"])))
    if target.get("averageUtilization") is not None:
        values.append(("utilization", float(target["averageUtilization"])))
    return str(name or ""), values


def add_hpa(hpa: Obj, out: Samples) -> None:
    m, s, st = meta(hpa), spec(hpa), status(hpa)
    key = (m.get("namespace", ""), m.get("name", ""))
    ref = s.get("scaleTargetRef") or {}
    out.add(
        "kube_horizontalpodautoscaler_info",
        (*key, ref.get("apiVersion") or "", ref.get("kind") or "", ref.get("name") or ""),
        1,
    )
    out.add("kube_horizontalpodautoscaler_metadata_generation", key, m.get("generation") or 0)
    out.add("kube_horizontalpodautoscaler_spec_max_replicas", key, s.get("maxReplicas") or 0)
    out.add("kube_horizontalpodautoscaler_spec_min_replicas", key, s.get("minReplicas", 1))
    for family, items, field in (
        ("kube_horizontalpodautoscaler_spec_target_metric", s.get("metrics"), "target"),
        ("kube_horizontalpodautoscaler_status_target_metric", st.get("currentMetrics"), "current"),
    ):
        for item in items or []:
            name, values = _metric_values(item, field)
            for target_type, value in values:
                out.add(family, (*key, name, target_type), value)
    out.add(
        "kube_horizontalpodautoscaler_status_current_replicas", key, st.get("currentReplicas") or 0
    )
    out.add(
        "kube_horizontalpodautoscaler_status_desired_replicas", key, st.get("desiredReplicas") or 0
    )
    for cond in st.get("conditions") or []:
        for cstatus, v in conditions(cond.get("status")):
            out.add(
                "kube_horizontalpodautoscaler_status_condition",
                (*key, cond.get("type", ""), cstatus),
                v,
            )
