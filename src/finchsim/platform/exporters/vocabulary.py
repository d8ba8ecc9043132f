"""Every metric name the monitoring in `cluster/monitoring/` may use, and who serves it.

One declared place: the kube-state-metrics families come from this package's exporter
(`kube_state.FAMILIES`), the kubelet's volume statistics from `volume_stats.FAMILIES` and the
ingress controller's request counter from `ingress_nginx.FAMILIES`; the rest is listed here
with the labels a query may match on. **finch's kubelet serves `KUBELET_RESOURCE` on
`/metrics/resource`, `CADVISOR` on `/metrics/cadvisor` and `volume_stats.FAMILIES` on
`/metrics`**, with these label names, so the rules, dashboards and `finchsim calibrate` read
the same series on every platform.

`vocabulary_problems` holds the rule and dashboard expressions to it: a name that nothing here
exports (and no recording rule defines) is a problem, and so is a label matcher on an exporter
family that does not carry that label."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from finchsim.errors import Problem
from finchsim.platform.exporters import ingress_nginx, ksm_pods, kube_state, volume_stats
from finchsim.platform.exporters.families import CONDITION_STATUSES, Family
from finchsim.platform.exporters.promql import selectors

CONTAINER = ("namespace", "pod", "container")
# cAdvisor's own labels besides the pod's (the cgroup path, the image, the runtime's name).
CADVISOR_LABELS = (*CONTAINER, "id", "image", "name")


@dataclass(frozen=True)
class Source:
    """Who serves a set of metrics, and each metric's label names (None: not checked, e.g.
    series whose labels come from the workload or the scrape configuration)."""

    name: str
    metrics: Mapping[str, tuple[str, ...] | None]
    check_labels: bool = False


def _families(families: Iterable[Family]) -> dict[str, tuple[str, ...] | None]:
    return {f.name: None if f.dynamic else f.labels for f in families}


def _histogram(name: str, labels: tuple[str, ...] | None) -> dict[str, tuple[str, ...] | None]:
    return {
        f"{name}_bucket": (*labels, "le") if labels is not None else None,
        f"{name}_sum": labels,
        f"{name}_count": labels,
    }


KUBE_STATE = Source(
    "kube-state-metrics (finchsim.platform.exporters.kube_state)",
    {**_families(kube_state.FAMILIES), kube_state.LIST_TOTAL: ("resource", "result")},
    check_labels=True,
)
KUBELET_VOLUMES = Source(
    "kubelet /metrics (finchsim.platform.exporters.volume_stats)",
    _families(volume_stats.FAMILIES),
    check_labels=True,
)
# The kubelet's resource metrics endpoint, which metrics-server (and so the HPA) reads.
KUBELET_RESOURCE = Source(
    "kubelet /metrics/resource",
    {
        "node_cpu_usage_seconds_total": (),
        "node_memory_working_set_bytes": (),
        "pod_cpu_usage_seconds_total": ("namespace", "pod"),
        "pod_memory_working_set_bytes": ("namespace", "pod"),
        "container_cpu_usage_seconds_total": CONTAINER,
        "container_memory_working_set_bytes": CONTAINER,
        "container_start_time_seconds": CONTAINER,
    },
    check_labels=True,
)
# cAdvisor as the kubelet serves it; the rules, dashboards and `finchsim calibrate` use these.
CADVISOR = Source(
    "kubelet /metrics/cadvisor",
    {
        name: CADVISOR_LABELS
        for name in (
            "container_cpu_usage_seconds_total",
            "container_memory_working_set_bytes",
            "container_memory_rss",
            "container_memory_usage_bytes",
            "container_cpu_cfs_periods_total",
            "container_cpu_cfs_throttled_periods_total",
            "container_cpu_cfs_throttled_seconds_total",
            "container_spec_cpu_quota",
            "container_spec_cpu_period",
            "container_spec_memory_limit_bytes",
            "container_oom_events_total",
            "container_start_time_seconds",
        )
    },
    check_labels=True,
)
NODE_EXPORTER = Source(
    "node exporter",
    {
        "node_cpu_seconds_total": ("cpu", "mode"),
        "node_memory_MemAvailable_bytes": (),
        "node_memory_MemTotal_bytes": (),
    },
)
# The request counter with its labels as the local platform serves them
# (finchsim.platform.exporters.ingress_nginx, after ingress-nginx's socket collector); the
# duration histogram only on clusters running ingress-nginx itself (labels not checked).
INGRESS_NGINX = Source(
    "ingress-nginx controller (controller-v1.15.1 /metrics)",
    {
        **_families(ingress_nginx.FAMILIES),
        **_histogram("nginx_ingress_controller_request_duration_seconds", None),
    },
    check_labels=True,
)
# The reference workload's own metrics (cluster/workload/backend/finchapp/metrics.py, and
# django-prometheus's middleware) and its exporter sidecars.
WORKLOAD = Source(
    "Finch workload and its exporter sidecars",
    {
        "http_requests_total": None,
        **_histogram("http_request_duration_seconds", None),
        **_histogram("django_http_requests_latency_seconds_by_view_method", None),
        "finch_celery_tasks_total": None,
        "finch_celery_tasks_enqueued_total": None,
        "finch_celery_queue_length": None,
        "finch_summary_cache_total": None,
        "finch_task_records": None,
        "pg_up": None,
        "pg_stat_activity_count": None,
        "pg_settings_max_connections": None,
        "redis_up": None,
        "redis_memory_used_bytes": None,
        "redis_memory_max_bytes": None,
        "redis_evicted_keys_total": None,
    },
)
PROMETHEUS = Source(
    "Prometheus itself",
    {
        name: None
        for name in (
            "up",
            "ALERTS",
            "ALERTS_FOR_STATE",
            "scrape_duration_seconds",
            "scrape_samples_scraped",
            "scrape_samples_post_metric_relabeling",
            "scrape_series_added",
        )
    },
)
SOURCES = (
    KUBE_STATE,
    KUBELET_VOLUMES,
    KUBELET_RESOURCE,
    CADVISOR,
    NODE_EXPORTER,
    INGRESS_NGINX,
    WORKLOAD,
    PROMETHEUS,
)
_CONDITIONS = tuple(CONDITION_STATUSES)
_UNITS = ("core", "byte", "integer")
# The values kube-state-metrics writes into enumerated labels: a matcher on another value
# (`status="False"`) selects nothing, and the alert can never fire.
LABEL_VALUES: dict[tuple[str, str], tuple[str, ...]] = {
    **{
        (name, "status"): _CONDITIONS
        for name in (
            "kube_node_status_condition",
            "kube_horizontalpodautoscaler_status_condition",
            "kube_deployment_status_condition",
            "kube_persistentvolumeclaim_status_condition",
        )
    },
    **{
        (name, "condition"): _CONDITIONS
        for name in (
            "kube_pod_status_ready",
            "kube_pod_status_scheduled",
            "kube_job_complete",
            "kube_job_failed",
        )
    },
    **{
        (name, "unit"): _UNITS
        for name in (
            "kube_pod_container_resource_requests",
            "kube_pod_container_resource_limits",
            "kube_node_status_allocatable",
            "kube_node_status_capacity",
        )
    },
    ("kube_pod_status_phase", "phase"): ksm_pods.PHASES,
    ("kube_namespace_status_phase", "phase"): ("Active", "Terminating"),
    ("kube_persistentvolumeclaim_status_phase", "phase"): ("Lost", "Bound", "Pending"),
    ("kube_resourcequota", "type"): ("hard", "used"),
}
_ALTERNATIVES = re.compile(r"^[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*$")
# Labels a query may match on any series: the scrape's target labels (the kubelet and cAdvisor
# jobs add `node`, the pod jobs `namespace`, `pod`, `node`).
TARGET_LABELS = frozenset({"job", "instance", "node"})


def known_names() -> dict[str, list[Source]]:
    """Every declared metric name and the sources that serve it."""
    found: dict[str, list[Source]] = {}
    for source in SOURCES:
        for name in source.metrics:
            found.setdefault(name, []).append(source)
    return found


def rule_expressions(path: Path, shown: str) -> tuple[dict[tuple[str, str], str], set[str]]:
    """({(file, where): expr}, recorded names) of one Prometheus rule file."""
    doc = yaml.safe_load(path.read_text()) or {}
    exprs: dict[tuple[str, str], str] = {}
    recorded: set[str] = set()
    for g, group in enumerate(doc.get("groups") or []):
        for r, rule in enumerate(group.get("rules") or []):
            name = rule.get("alert") or rule.get("record") or ""
            exprs[(shown, f"groups[{g}].rules[{r}] ({name})")] = str(rule.get("expr", ""))
            if rule.get("record"):
                recorded.add(str(rule["record"]))
    return exprs, recorded


_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$", re.S)
_GRAFANA_FUNCTIONS = re.compile(r"^\s*(label_values|label_names|metrics|query_result)\(")


def _template_query(query: str) -> str | None:
    """The PromQL inside a Grafana template variable query: the series selector of
    label_values(selector, label) and the query of query_result(...); None when it holds
    no metric name (label_values(label), label_names(), metrics(regex))."""
    found = _LABEL_VALUES.match(query)
    if found:
        return found.group(1)
    if query.strip().startswith("query_result("):
        return query.strip()[len("query_result(") : -1]
    return None if _GRAFANA_FUNCTIONS.match(query) else query


def dashboard_expressions(path: Path, shown: str) -> dict[tuple[str, str], str]:
    """Every query of a Grafana dashboard: panel targets (rows' panels included), template
    variables and annotations, keyed by (file, JSON path)."""
    dashboard: Any = json.loads(path.read_text())
    exprs: dict[tuple[str, str], str] = {}

    def panels(items: Iterable[Any], prefix: str) -> None:
        for i, panel in enumerate(items):
            where = f"{prefix}panels[{i}]"
            for j, target in enumerate(panel.get("targets") or []):
                if isinstance(target, dict) and target.get("expr"):
                    exprs[(shown, f"{where}.targets[{j}].expr")] = str(target["expr"])
            panels(panel.get("panels") or [], f"{where}.")

    panels(dashboard.get("panels") or [], "")
    for i, var in enumerate((dashboard.get("templating") or {}).get("list") or []):
        query = var.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        if var.get("type") == "query" and isinstance(text, str):
            inner = _template_query(text)
            if inner is not None:
                exprs[(shown, f"templating.list[{i}].query")] = inner
    for i, note in enumerate((dashboard.get("annotations") or {}).get("list") or []):
        if isinstance(note, dict) and note.get("expr"):
            exprs[(shown, f"annotations.list[{i}].expr")] = str(note["expr"])
    return exprs


def vocabulary_problems(
    exprs: Mapping[tuple[str, str], str], recorded: Iterable[str] = ()
) -> list[Problem]:
    """A Problem per metric name an expression uses that no source declares and no recording
    rule defines, per label matcher on a label-checked family that lacks that label, and per
    matcher on an enumerated label (LABEL_VALUES) for a value the exporter never writes."""
    known = known_names()
    defined = set(recorded)
    problems: list[Problem] = []
    for (file, where), expr in exprs.items():
        for selector in selectors(expr):
            name = selector.name
            if name is None or name in defined:
                continue
            sources = known.get(name)
            if not sources:
                problems.append(
                    Problem(file, where, f"metric {name} is exported by nothing finch-sim runs")
                )
                continue
            allowed: set[str] = set(TARGET_LABELS)
            for source in sources:
                labels = source.metrics[name]
                if not source.check_labels or labels is None:
                    allowed = set()
                    break
                allowed.update(labels)
            missing = sorted(selector.labels - allowed) if allowed else []
            for label in missing:
                problems.append(Problem(file, where, f"metric {name} has no label {label}"))
            problems += _value_problems(file, where, name, selector.matchers)
    return problems


def _value_problems(
    file: str, where: str, name: str, matchers: Iterable[tuple[str, str, str]]
) -> list[Problem]:
    problems: list[Problem] = []
    for label, op, text in matchers:
        domain = LABEL_VALUES.get((name, label))
        if domain is None or op not in ("=", "=~"):
            continue
        if op == "=~" and not _ALTERNATIVES.match(text):
            continue  # a real regular expression: not checked
        for wanted in text.split("|") if op == "=~" else [text]:
            if wanted not in domain:
                problems.append(
                    Problem(
                        file,
                        where,
                        f'metric {name} never has {label}="{wanted}" (its values: '
                        f"{', '.join(domain)})",
                    )
                )
    return problems


def rule_test_series(path: Path, shown: str) -> dict[tuple[str, str], str]:
    """The input series of a `promtool test rules` file, as selectors keyed by place: a rule
    test fed series the exporters never produce would pass while the alert cannot fire."""
    doc = yaml.safe_load(path.read_text()) or {}
    found: dict[tuple[str, str], str] = {}
    for t, test in enumerate(doc.get("tests") or []):
        for s, item in enumerate(test.get("input_series") or []):
            found[(shown, f"tests[{t}].input_series[{s}]")] = str(item.get("series", ""))
    return found


def monitoring_vocabulary_problems(monitoring: Path, shown_root: Path) -> list[Problem]:
    """`vocabulary_problems` of every rule file, dashboard and rule test's input series under
    `monitoring` (cluster/monitoring/), file names shown relative to `shown_root`."""
    exprs: dict[tuple[str, str], str] = {}
    recorded: set[str] = set()
    for path in sorted((monitoring / "prometheus" / "rules").glob("*.yml")):
        found, names = rule_expressions(path, str(path.relative_to(shown_root)))
        exprs.update(found)
        recorded |= names
    for path in sorted((monitoring / "grafana" / "dashboards").glob("*.json")):
        exprs.update(dashboard_expressions(path, str(path.relative_to(shown_root))))
    for path in sorted((monitoring / "prometheus" / "tests").glob("*.yml")):
        exprs.update(rule_test_series(path, str(path.relative_to(shown_root))))
    return vocabulary_problems(exprs, recorded)
