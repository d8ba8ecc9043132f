"""cluster/monitoring/ passes promtool/amtool offline, and the checks catch what they should.

The "catches" tests write broken inputs to tmp_path and expect a Problem naming the file: a
check that always returns [] would pass the repository tests but fail these."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from finchsim.errors import Problem
from finchsim.platform import promtool
from finchsim.platform.manifests import Rendered, render
from finchsim.platform.tools import find_tool, run
from finchsim.project import Project

PROJECT = Project.locate()
MONITORING = PROJECT.cluster / "monitoring"
PROMETHEUS = MONITORING / "prometheus"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
ALERTMANAGER = MONITORING / "alertmanager" / "alertmanager.yml"

KUBERNETES_VERSION = "1.34.0"

needs_amtool = pytest.mark.skipif(shutil.which("amtool") is None, reason="amtool not installed")


def _alerts() -> dict[str, dict[str, Any]]:
    alerts: dict[str, dict[str, Any]] = {}
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    alerts[rule["alert"]] = rule
    return alerts


def _named(problems: list[Problem], file: Path | str) -> list[Problem]:
    return [p for p in problems if p.file == str(file)]


# --- the repository's files pass ------------------------------------------------------------


def test_repository_has_rules_tests_and_dashboards() -> None:
    assert len(RULES) >= 3 and len(TESTS) == len(RULES) and len(DASHBOARDS) >= 2
    assert len(_alerts()) >= 20


def test_rule_files_pass_promtool_check() -> None:
    assert promtool.check_rules(RULES, project=PROJECT) == []


def test_rule_unit_tests_pass() -> None:
    assert promtool.test_rules(TESTS, project=PROJECT) == []


def test_prometheus_config_passes() -> None:
    assert promtool.check_config(PROMETHEUS / "prometheus.yml", project=PROJECT) == []


@needs_amtool
def test_alertmanager_config_passes() -> None:
    assert promtool.check_alertmanager_config(ALERTMANAGER, project=PROJECT) == []


def test_dashboards_parse_and_every_query_is_promql() -> None:
    for path in DASHBOARDS:
        assert len(promtool.grafana_expressions(json.loads(path.read_text()))) >= 10, path
    assert promtool.check_dashboards(DASHBOARDS, project=PROJECT) == []


def test_monitoring_problems_is_empty_for_the_repository() -> None:
    assert promtool.monitoring_problems(PROJECT) == []


def test_seed_alert_is_kept_verbatim() -> None:
    rule = _alerts()["HighErrorRate"]
    assert rule["expr"] == 'rate(http_requests_total{status=~"5.."}[5m]) > 0.1'
    assert rule["for"] == "2m"
    assert rule["labels"]["severity"] == "critical"
    assert rule["annotations"]["summary"] == "High error rate detected"


def test_every_alert_has_for_severity_and_annotations() -> None:
    for name, rule in _alerts().items():
        assert rule.get("for"), name
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert {"summary", "description", "runbook"} <= set(rule["annotations"]), name


def test_every_alert_has_a_firing_and_a_silent_test_case() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for path in TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                exp = case.get("exp_alerts") or []
                (fires if exp else silent).add(case["alertname"])
                for alert in exp:  # a firing case pins labels and annotations
                    assert alert["exp_labels"]["severity"], case
                    assert alert["exp_annotations"]["summary"], case
    alerts = set(_alerts())
    assert alerts - fires == set(), "alerts without a case where they fire"
    assert alerts - silent == set(), "alerts without a case where they stay silent"
    assert (fires | silent) - alerts == set(), "test cases for alerts that do not exist"


@needs_amtool
@pytest.mark.parametrize(
    ("severity", "receiver"),
    [("critical", "critical"), ("warning", "warning"), ("info", "default")],
)
def test_alertmanager_routes_by_severity(severity: str, receiver: str) -> None:
    out = run(
        [
            find_tool("amtool"),
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER}",
            f"severity={severity}",
            "alertname=Any",
        ]
    )
    assert out.split() == [receiver]


# --- broken inputs produce a Problem naming the file ----------------------------------------


def test_broken_rule_file_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up ==\n    for: 1m\n")
    good = tmp_path / "good.yml"
    good.write_text("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0\n")
    problems = promtool.check_rules([bad, good])
    assert [p.file for p in problems] == [str(bad)]
    assert "parse error" in problems[0].message


def test_unknown_rule_field_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "typo.yml"
    bad.write_text("groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up\n    fro: 1m\n")
    problems = promtool.check_rules([bad])
    assert len(_named(problems, bad)) == 1 and "fro" in problems[0].message


def test_broken_promql_names_file_and_expression() -> None:
    problems = promtool.check_expressions(
        {"ok": "sum(rate(x[5m]))", "bad": "sum(rate(x[5m])", "worse": 'x{a="b"'}, file="dash.json"
    )
    assert [(p.file, p.field) for p in problems] == [("dash.json", "bad"), ("dash.json", "worse")]
    assert "parse error" in problems[0].message


def test_broken_dashboard_query_is_reported(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARDS[0].read_text())
    dashboard["panels"][1]["targets"][0]["expr"] = "rate(http_requests_total[$__rate_interval]"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(dashboard))
    (tmp_path / "not-json.json").write_text("{")
    problems = promtool.check_dashboards([path, tmp_path / "not-json.json"])
    assert [(p.file, p.field) for p in problems] == [
        (str(path), "panels[1].targets[0].expr"),
        (str(tmp_path / "not-json.json"), ""),
    ]


def test_grafana_variables_are_substituted() -> None:
    exprs = promtool.grafana_expressions(
        {
            "panels": [
                {
                    "type": "row",
                    "panels": [
                        {
                            "targets": [
                                {
                                    "expr": 'rate(x{ns=~"$namespace", p="${pod}"}'
                                    "[$__rate_interval])[${__range}:1m]"
                                }
                            ]
                        }
                    ],
                }
            ]
        }
    )
    assert exprs == {
        "panels[0].panels[0].targets[0].expr": (
            'rate(x{ns=~"grafana-var", p="grafana-var"}[5m])[5m:1m]'
        )
    }


def test_failing_rule_unit_test_is_reported(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(
        "groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n    for: 1m\n"
    )
    failing = tmp_path / "failing.test.yml"
    failing.write_text(
        yaml.safe_dump(
            {
                "rule_files": ["rules.yml"],
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": [{"series": 'up{job="a"}', "values": "0x10"}],
                        "alert_rule_test": [
                            {"eval_time": "5m", "alertname": "Down", "exp_alerts": []}
                        ],
                    }
                ],
            }
        )
    )
    problems = promtool.test_rules([failing])
    assert [p.file for p in problems] == [str(failing)]
    assert "Down" in problems[0].message


def test_missing_test_coverage_is_reported(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("groups:\n- name: g\n  rules:\n  - alert: Down\n    expr: up == 0\n")
    tests = tmp_path / "rules.test.yml"
    tests.write_text(
        yaml.safe_dump(
            {
                "tests": [
                    {
                        "alert_rule_test": [
                            {
                                "eval_time": "1m",
                                "alertname": "Down",
                                "exp_alerts": [{"exp_labels": {}}],
                            }
                        ]
                    }
                ]
            }
        )
    )
    problems = promtool.alert_test_coverage([rules], [tests])
    assert [(p.file, p.field) for p in problems] == [(str(rules), "groups[0].rules[0]")]
    assert "stays silent" in problems[0].message


@pytest.mark.parametrize(
    ("old", "new", "field", "needle"),
    [
        ("regex: Succeeded|Failed", "regex: Succeeded|(Failed", "", "regexp"),
        ("honor_labels: true", "honour_labels: true", "", "honour_labels"),
        (
            "- role: node",
            "- role: nodes",
            "scrape_configs[7].kubernetes_sd_configs[0].role",
            "nodes",
        ),
        ("- rules/*.yml", "- nothing/*.yml", "rule_files[0]", "matches no file"),
    ],
)
def test_broken_prometheus_config_is_reported(
    tmp_path: Path, old: str, new: str, field: str, needle: str
) -> None:
    shutil.copytree(PROMETHEUS / "rules", tmp_path / "rules")
    config = tmp_path / "prometheus.yml"
    text = (PROMETHEUS / "prometheus.yml").read_text()
    assert old in text
    config.write_text(text.replace(old, new, 1))
    problems = promtool.check_config(config)
    assert [(p.file, p.field) for p in problems] == [(str(config), field)]
    assert needle in problems[0].message


def test_broken_rule_file_referenced_by_config_is_reported(tmp_path: Path) -> None:
    shutil.copytree(PROMETHEUS / "rules", tmp_path / "rules")
    (tmp_path / "rules" / "broken.yml").write_text(
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum(\n"
    )
    config = tmp_path / "prometheus.yml"
    shutil.copy(PROMETHEUS / "prometheus.yml", config)
    problems = promtool.check_config(config)
    assert [p.file for p in problems] == [str(config)]
    assert "broken.yml" in problems[0].message


@needs_amtool
def test_broken_alertmanager_config_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "alertmanager.yml"
    bad.write_text(ALERTMANAGER.read_text().replace("receiver: critical", "receiver: nobody"))
    problems = promtool.check_alertmanager_config(bad)
    assert [p.file for p in problems] == [str(bad)]
    assert "nobody" in problems[0].message


# --- the kustomize build ships these files and meets Pod Security ---------------------------


@pytest.fixture(scope="module")
def rendered() -> list[Rendered]:
    return render(PROJECT, "monitoring")


def _configmap(rendered: list[Rendered], prefix: str) -> dict[str, str]:
    [found] = [r.obj for r in rendered if r.kind == "ConfigMap" and r.name.startswith(prefix)]
    return dict(found["data"])


def test_rendered_configmaps_carry_every_rule_file_and_dashboard(rendered: list[Rendered]) -> None:
    rules = _configmap(rendered, "prometheus-rules-")
    assert rules == {p.name: p.read_text() for p in RULES}
    assert set(_configmap(rendered, "grafana-dashboards-")) == {p.name for p in DASHBOARDS}
    config = yaml.safe_load(_configmap(rendered, "prometheus-config-")["prometheus.yml"])
    assert config["rule_files"] == ["rules/*.yml"]  # beside the config in the pod, as here


def test_rendered_objects_validate_against_kubernetes(rendered: list[Rendered]) -> None:
    errors = []
    for r in rendered:
        try:
            kubernetes_validate.validate(r.obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{r.ref} ({r.source}): {exc}")
    assert errors == []


def test_pods_meet_restricted_pod_security(rendered: list[Rendered]) -> None:
    levels = {
        r.name: r.obj["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        for r in rendered
        if r.kind == "Namespace"
    }
    assert levels["finch-monitoring"] == "restricted"
    workloads = [r for r in rendered if r.kind in {"Deployment", "DaemonSet", "StatefulSet"}]
    assert {r.name for r in workloads} >= {
        "prometheus",
        "alertmanager",
        "grafana",
        "kube-state-metrics",
        "node-exporter",
    }
    for r in workloads:
        pod = r.obj["spec"]["template"]["spec"]
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert pod["securityContext"]["runAsNonRoot"] is True, r.ref
            assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", r.ref
            assert ctx["allowPrivilegeEscalation"] is False, r.ref
            assert ctx["readOnlyRootFilesystem"] is True, r.ref
            assert ctx["capabilities"]["drop"] == ["ALL"], r.ref
            assert "add" not in ctx["capabilities"], r.ref
        host_access = (
            pod.get("hostNetwork")
            or pod.get("hostPID")
            or any("hostPath" in v for v in pod.get("volumes", []))
        )
        # Host access is only allowed in a namespace that is not labelled restricted.
        assert not host_access or levels[r.namespace] == "privileged", r.ref
        assert host_access or levels[r.namespace] == "restricted", r.ref
