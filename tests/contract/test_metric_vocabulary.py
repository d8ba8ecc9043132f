"""The alert rules and dashboards of cluster/monitoring/ use only metric names something
finch-sim runs exports (finchsim.platform.exporters.vocabulary), with labels those families
carry. The "catches" tests break a copy of the files on purpose and expect the exact problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from finchsim.platform.exporters import kube_state, vocabulary
from finchsim.platform.exporters.promql import selectors
from finchsim.project import Project

PROJECT = Project.locate()
MONITORING = PROJECT.cluster / "monitoring"
WORKLOAD_METRICS = PROJECT.cluster / "workload" / "backend" / "finchapp" / "metrics.py"


def _used_names(monitoring: Path, root: Path) -> dict[str, set[str]]:
    """metric name -> the rule/dashboard places that use it."""
    exprs: dict[tuple[str, str], str] = {}
    for path in sorted((monitoring / "prometheus" / "rules").glob("*.yml")):
        exprs.update(vocabulary.rule_expressions(path, str(path.relative_to(root)))[0])
    for path in sorted((monitoring / "grafana" / "dashboards").glob("*.json")):
        exprs.update(vocabulary.dashboard_expressions(path, str(path.relative_to(root))))
    used: dict[str, set[str]] = {}
    for (file, where), expr in exprs.items():
        for s in selectors(expr):
            if s.name:
                used.setdefault(s.name, set()).add(f"{file}: {where}")
    return used


def test_every_name_the_rules_and_dashboards_use_is_exported() -> None:
    problems = vocabulary.monitoring_vocabulary_problems(MONITORING, PROJECT.root)
    used = _used_names(MONITORING, PROJECT.root)
    known = vocabulary.known_names()
    for name in sorted(used):
        print(f"{name:60} {', '.join(s.name for s in known.get(name, [])) or 'NOTHING'}")
    assert [str(p) for p in problems] == []
    # The series issue 9 found missing are among those used, and now exported.
    for name in (
        "kube_pod_container_status_waiting_reason",
        "kube_deployment_status_replicas_unavailable",
        "kube_horizontalpodautoscaler_status_condition",
        "kubelet_volume_stats_available_bytes",
        "kubelet_volume_stats_capacity_bytes",
        "kubelet_volume_stats_used_bytes",
        "nginx_ingress_controller_requests",
    ):
        assert name in used and name in known, name


def test_the_dashboards_template_variable_queries_are_read() -> None:
    """label_values(selector, label) counts its selector, not the label name."""
    path = MONITORING / "grafana" / "dashboards" / "finch-overview.json"
    exprs = vocabulary.dashboard_expressions(path, "d.json")
    templating = {k: v for k, v in exprs.items() if k[1].startswith("templating")}
    assert templating, "the dashboard has a query variable"
    for expr in templating.values():
        assert {s.name for s in selectors(expr)} == {"kube_namespace_status_phase"}


@pytest.fixture
def monitoring_copy(tmp_path: Path) -> Path:
    target = tmp_path / "monitoring"
    shutil.copytree(MONITORING / "prometheus" / "rules", target / "prometheus" / "rules")
    shutil.copytree(MONITORING / "grafana" / "dashboards", target / "grafana" / "dashboards")
    return target


def test_catches_a_rule_using_an_unknown_name(monitoring_copy: Path, tmp_path: Path) -> None:
    rules = monitoring_copy / "prometheus" / "rules" / "kubernetes.yml"
    doc = yaml.safe_load(rules.read_text())
    group = doc["groups"][0]
    index = next(
        i for i, r in enumerate(group["rules"]) if r.get("alert") == "DeploymentReplicasUnavailable"
    )
    # A typo: kube-state-metrics has no such series, so the alert could never fire.
    group["rules"][index]["expr"] = "kube_deployment_status_replicas_unavailible > 0"
    rules.write_text(yaml.safe_dump(doc, sort_keys=False))
    problems = vocabulary.monitoring_vocabulary_problems(monitoring_copy, tmp_path)
    assert [str(p) for p in problems] == [
        f"monitoring/prometheus/rules/kubernetes.yml: groups[0].rules[{index}]"
        " (DeploymentReplicasUnavailable): metric kube_deployment_status_replicas_unavailible"
        " is exported by nothing finch-sim runs"
    ]


def test_catches_a_dashboard_query_and_a_label_nothing_exports(
    monitoring_copy: Path, tmp_path: Path
) -> None:
    path = monitoring_copy / "grafana" / "dashboards" / "finch-capacity.json"
    dashboard = json.loads(path.read_text())
    dashboard["panels"][0]["targets"] = [
        {"expr": 'sum(kube_pod_container_resource_requests{resource="cpu", zone="a"})'},
        {"expr": "rate(container_cpu_usage_seconds{container!=''}[5m])"},
    ]
    path.write_text(json.dumps(dashboard))
    problems = vocabulary.monitoring_vocabulary_problems(monitoring_copy, tmp_path)
    shown = "monitoring/grafana/dashboards/finch-capacity.json"
    assert [str(p) for p in problems] == [
        f"{shown}: panels[0].targets[0].expr: metric kube_pod_container_resource_requests"
        " has no label zone",
        f"{shown}: panels[0].targets[1].expr: metric container_cpu_usage_seconds is exported"
        " by nothing finch-sim runs",
    ]


def test_a_recording_rule_defines_its_name(monitoring_copy: Path, tmp_path: Path) -> None:
    extra = monitoring_copy / "prometheus" / "rules" / "recorded.yml"
    extra.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "r",
                        "rules": [
                            {"record": "namespace:http_requests:rate5m", "expr": "up"},
                            {"alert": "A", "expr": "namespace:http_requests:rate5m > 1"},
                        ],
                    }
                ]
            }
        )
    )
    assert vocabulary.monitoring_vocabulary_problems(monitoring_copy, tmp_path) == []


def test_the_workload_vocabulary_is_what_the_workload_exports() -> None:
    """Names declared as the Finch app's are registered in its metrics module, or come from
    django-prometheus's middleware or the postgres/redis exporters."""
    import django_prometheus.middleware as middleware

    app = WORKLOAD_METRICS.read_text()
    django = Path(middleware.__file__).read_text()
    for name in vocabulary.WORKLOAD.metrics:
        base = name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
        if base.startswith(("pg_", "redis_")):
            continue  # the exporter binaries' names; see the Debian packages' docs
        if base.startswith("django_"):
            assert base.removeprefix("django_") in django, name
        else:
            assert f'"{base}"' in app, name


def test_the_exporter_declares_the_families_it_fills() -> None:
    """The vocabulary's kube-state names are the exporter's declared families, unique."""
    declared = [f.name for f in kube_state.FAMILIES]
    assert len(declared) == len(set(declared))
    assert set(declared) <= set(vocabulary.KUBE_STATE.metrics)


def test_catches_a_condition_status_kube_state_metrics_never_writes(
    monitoring_copy: Path, tmp_path: Path
) -> None:
    """kube-state-metrics lower-cases condition statuses: `status="False"` selects nothing."""
    rules = monitoring_copy / "prometheus" / "rules" / "kubernetes.yml"
    text = rules.read_text()
    assert 'condition=~"AbleToScale|ScalingActive", status="false"' in text
    rules.write_text(
        text.replace('ScalingActive", status="false"', 'ScalingActive", status="False"')
    )
    problems = vocabulary.monitoring_vocabulary_problems(monitoring_copy, tmp_path)
    assert len(problems) == 1, problems
    assert str(problems[0]).endswith(
        "(HPAUnableToScale): metric kube_horizontalpodautoscaler_status_condition never has"
        ' status="False" (its values: true, false, unknown)'
    )


def test_catches_a_rule_test_fed_series_the_exporter_never_produces(
    monitoring_copy: Path, tmp_path: Path
) -> None:
    """A promtool rule test with a made-up label passes while the real alert cannot fire."""
    source = MONITORING / "prometheus" / "tests" / "kubernetes.test.yml"
    target = monitoring_copy / "prometheus" / "tests" / "kubernetes.test.yml"
    target.parent.mkdir(parents=True)
    text = source.read_text()
    needle = (
        "kube_horizontalpodautoscaler_spec_max_replicas"
        '{namespace="finch-production",horizontalpodautoscaler='
    )
    assert needle in text
    target.write_text(text.replace(needle, needle.replace("horizontalpodautoscaler=", "hpa="), 1))
    problems = vocabulary.monitoring_vocabulary_problems(monitoring_copy, tmp_path)
    assert [p.message for p in problems] == [
        "metric kube_horizontalpodautoscaler_spec_max_replicas has no label hpa"
    ]
    assert problems[0].file == "monitoring/prometheus/tests/kubernetes.test.yml"
    assert problems[0].field.startswith("tests[")
