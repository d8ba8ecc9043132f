"""Offline checks of `cluster/monitoring/` with promtool and amtool; no server is started.

Every check returns a list of Problems naming the file (empty = fine). `monitoring_problems`
runs them all over a project, for `finchsim validate`. Debian's promtool is built without
Kubernetes service discovery, so `check_config` checks `kubernetes_sd_configs` blocks itself and
hands promtool a temporary copy in which they are replaced by static targets."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from finchsim.errors import CommandError, PlatformError, Problem
from finchsim.platform.tools import find_tool, run
from finchsim.project import Project

# Where the pod mounts prometheus.yml's directory: absolute paths under it map to the repo copy.
IN_CLUSTER_CONFIG_DIR = "/etc/prometheus"
# Mounted by Kubernetes into every pod with a service account token; absent on this machine.
IN_CLUSTER_FILES = ("/var/run/secrets/kubernetes.io/serviceaccount/",)
_FILE_KEYS = (
    "ca_file",
    "cert_file",
    "key_file",
    "credentials_file",
    "bearer_token_file",
    "password_file",
)
_K8S_ROLES = ("node", "service", "pod", "endpoints", "endpointslice", "ingress")
_K8S_KEYS = {
    "role",
    "namespaces",
    "selectors",
    "api_server",
    "kubeconfig_file",
    "attach_metadata",
    "follow_redirects",
    "enable_http2",
    "tls_config",
    "authorization",
    "basic_auth",
    "oauth2",
    "proxy_url",
    "no_proxy",
    "proxy_from_environment",
    "bearer_token_file",
}
# Grafana variables in dashboard queries, replaced by something PromQL parses.
_GRAFANA_INTERVALS = re.compile(r"\$\{?(?:__rate_interval|__interval|__range)\b\}?")
_GRAFANA_VARS = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*(?::[a-z]+)?\}?")
_NOISE = ("Checking ", "Unit Testing: ", "SUCCESS", "amtool: error: failed to validate")
_UNKNOWN_FIELD = re.compile(r"line \d+: field (\w+) not found")
_GROUP_ERROR = re.compile(r'group "expr-(\d+)", rule \d+, "[^"]*": (.*)')


def _show(path: Path, project: Project | None) -> str:
    return project.rel(path) if project is not None else str(path)


def _failure(exc: CommandError, *replace: tuple[str, str]) -> list[str]:
    """The informative lines of a failed promtool/amtool run, temp paths swapped back."""
    text = exc.output
    for old, new in replace:
        text = text.replace(old, new)
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if "FAILED:" in line:  # "Checking 'x'  FAILED: reason" or a bare "FAILED:"
            line = line.split("FAILED:", 1)[1].strip()
        if line and not line.startswith(_NOISE):
            lines.append(line)
    return lines


def check_rules(paths: Sequence[Path], *, project: Project | None = None) -> list[Problem]:
    """`promtool check rules` on each rule file: YAML shape, PromQL syntax, templates."""
    promtool = find_tool("promtool")
    problems: list[Problem] = []
    for path in paths:
        shown = _show(path, project)
        try:
            run([promtool, "check", "rules", str(path)])
        except CommandError as exc:
            lines = _failure(exc, (f"{path}: ", ""), (str(path), shown))
            problems.append(Problem(shown, "", "\n".join(lines) or "promtool check rules failed"))
    return problems


def test_rules(paths: Sequence[Path], *, project: Project | None = None) -> list[Problem]:
    """`promtool test rules` on each unit-test file (its rule_files resolve next to it)."""
    promtool = find_tool("promtool")
    problems: list[Problem] = []
    for path in paths:
        shown = _show(path, project)
        try:
            run([promtool, "test", "rules", str(path)], cwd=path.parent)
        except CommandError as exc:
            lines = _failure(exc, (str(path), shown))
            problems.append(Problem(shown, "", "\n".join(lines) or "promtool test rules failed"))
    return problems


@cache
def _promtool_has_kubernetes_sd(promtool: str) -> bool:
    with tempfile.TemporaryDirectory(prefix="finchsim-promtool-") as tmp:
        probe = Path(tmp) / "probe.yml"
        probe.write_text("scrape_configs:\n- job_name: p\n  kubernetes_sd_configs: [{role: pod}]\n")
        try:
            run([promtool, "check", "config", "--syntax-only", str(probe)])
        except CommandError:
            return False
    return True


def _kubernetes_sd_problems(sd: Any, where: str) -> Iterator[tuple[str, str]]:
    if not isinstance(sd, dict):
        yield where, "must be a mapping"
        return
    for key in sorted(set(sd) - _K8S_KEYS):
        yield f"{where}.{key}", "unknown field"
    if sd.get("role") not in _K8S_ROLES:
        yield f"{where}.role", f"must be one of {', '.join(_K8S_ROLES)}, not {sd.get('role')!r}"
    names = (sd.get("namespaces") or {}).get("names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        yield f"{where}.namespaces.names", "must be a list of namespace names"


def _sd_holders(config: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for i, scrape in enumerate(config.get("scrape_configs") or []):
        yield f"scrape_configs[{i}]", scrape
    for i, am in enumerate((config.get("alerting") or {}).get("alertmanagers") or []):
        yield f"alerting.alertmanagers[{i}]", am


def _map_files(node: Any, tmp: Path, config_dir: Path) -> None:
    """Point in-cluster file references at placeholders (secrets) or the repo copy (config)."""
    if isinstance(node, list):
        for item in node:
            _map_files(item, tmp, config_dir)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in _FILE_KEYS and isinstance(value, str):
                if value.startswith(IN_CLUSTER_FILES):
                    placeholder = tmp / "in-cluster" / Path(value).name
                    placeholder.parent.mkdir(exist_ok=True)
                    placeholder.write_text("placeholder\n")
                    node[key] = str(placeholder)
                else:
                    node[key] = str(_resolve(value, config_dir))
            else:
                _map_files(value, tmp, config_dir)


def _resolve(value: str, config_dir: Path) -> Path:
    if value == IN_CLUSTER_CONFIG_DIR or value.startswith(IN_CLUSTER_CONFIG_DIR + "/"):
        return config_dir / value[len(IN_CLUSTER_CONFIG_DIR) :].lstrip("/")
    return config_dir / value  # an absolute `value` wins over config_dir


def check_config(path: Path, *, project: Project | None = None) -> list[Problem]:
    """`promtool check config` on a temporary copy of prometheus.yml in which in-cluster paths
    point at the repository's files (rule_files) or placeholders (service account secrets), and
    `kubernetes_sd_configs` are checked here when promtool lacks them."""
    shown = _show(path, project)
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        return [Problem(shown, "", f"cannot read: {exc}")]
    if not isinstance(config, dict):
        return [Problem(shown, "", "must be a YAML mapping")]
    promtool = find_tool("promtool")
    problems: list[Problem] = []
    native_k8s = _promtool_has_kubernetes_sd(promtool)
    for where, holder in _sd_holders(config):
        if not isinstance(holder, dict) or "kubernetes_sd_configs" not in holder:
            continue
        for j, sd in enumerate(holder["kubernetes_sd_configs"] or []):
            at = f"{where}.kubernetes_sd_configs[{j}]"
            problems += [Problem(shown, f, m) for f, m in _kubernetes_sd_problems(sd, at)]
        if not native_k8s:
            del holder["kubernetes_sd_configs"]
            static = {"targets": ["kubernetes-sd.invalid:80"]}
            holder.setdefault("static_configs", []).append(static)
    rule_files = config.get("rule_files") or []
    for i, pattern in enumerate(rule_files):
        resolved = _resolve(str(pattern), path.parent)
        if not list(resolved.parent.glob(resolved.name)):
            problems.append(Problem(shown, f"rule_files[{i}]", f"{pattern!r} matches no file"))
    with tempfile.TemporaryDirectory(prefix="finchsim-promtool-") as tmp:
        config["rule_files"] = [str(_resolve(str(p), path.parent)) for p in rule_files]
        _map_files(config, Path(tmp), path.parent)
        copy = Path(tmp) / path.name
        copy.write_text(yaml.safe_dump(config, sort_keys=False))
        try:
            run([promtool, "check", "config", str(copy)])
        except CommandError as exc:
            shown_dir = _show(path.parent, project)
            lines = _failure(exc, (str(copy), shown), (str(path.parent), shown_dir))
            text = _original_lines("\n".join(lines), path.read_text())
            problems.append(Problem(shown, "", text or "promtool check config failed"))
    return problems


def _original_lines(message: str, original: str) -> str:
    """promtool's YAML line numbers count lines of the temporary copy: point them at the first
    line of the user's file that holds the unknown field instead."""

    def fix(found: re.Match[str]) -> str:
        field = found.group(1)
        for number, line in enumerate(original.splitlines(), start=1):
            if re.match(rf"\s*(- )?{re.escape(field)}:", line):
                return f"line {number}: field {field} not found"
        return f"field {field} not found"

    return _UNKNOWN_FIELD.sub(fix, message)


def check_expressions(exprs: dict[str, str], *, file: str = "") -> list[Problem]:
    """Parse PromQL offline: each expression becomes a recording rule of a temporary rule file
    that `promtool check rules` parses. Problems name `file` and the expression's key."""
    if not exprs:
        return []
    keys = list(exprs)
    groups = [
        {"name": f"expr-{i}", "rules": [{"record": "check:expr", "expr": exprs[k]}]}
        for i, k in enumerate(keys)
    ]
    with tempfile.TemporaryDirectory(prefix="finchsim-promql-") as tmp:
        rules = Path(tmp) / "expressions.yml"
        rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        try:
            run([find_tool("promtool"), "check", "rules", str(rules)])
        except CommandError as exc:
            problems: list[Problem] = []
            for line in _failure(exc):
                found = _GROUP_ERROR.search(line)
                if found:
                    problems.append(Problem(file, keys[int(found.group(1))], found.group(2)))
            return problems or [Problem(file, "", "\n".join(_failure(exc, (tmp, "<tmp>"))))]
    return []


def grafana_expressions(dashboard: dict[str, Any]) -> dict[str, str]:
    """Every panel query of a Grafana dashboard, keyed by its JSON path, with Grafana's
    variables replaced ($__rate_interval etc. by 5m, $var by a label value) so PromQL parses."""
    found: dict[str, str] = {}

    def walk(panels: Iterable[Any], prefix: str) -> None:
        for i, panel in enumerate(panels):
            where = f"{prefix}panels[{i}]"
            for j, target in enumerate(panel.get("targets") or []):
                if isinstance(target, dict) and target.get("expr"):
                    expr = _GRAFANA_INTERVALS.sub("5m", str(target["expr"]))
                    found[f"{where}.targets[{j}].expr"] = _GRAFANA_VARS.sub("grafana-var", expr)
            walk(panel.get("panels") or [], f"{where}.")

    walk(dashboard.get("panels") or [], "")
    return found


def check_alertmanager_config(path: Path, *, project: Project | None = None) -> list[Problem]:
    """`amtool check-config`; returns no problem when amtool is not installed."""
    try:
        amtool = find_tool("amtool")
    except PlatformError:
        return []
    shown = _show(path, project)
    try:
        run([amtool, "check-config", str(path)])
    except CommandError as exc:
        lines = _failure(exc, (f"'{path}'", shown), (str(path), shown))
        return [Problem(shown, "", "\n".join(lines) or "amtool check-config failed")]
    return []


def check_dashboards(paths: Sequence[Path], *, project: Project | None = None) -> list[Problem]:
    """Each dashboard is a JSON object and every PromQL query in it parses."""
    problems: list[Problem] = []
    for path in paths:
        shown = _show(path, project)
        try:
            dashboard = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            problems.append(Problem(shown, "", f"not valid JSON: {exc}"))
            continue
        if not isinstance(dashboard, dict) or not dashboard.get("uid"):
            problems.append(Problem(shown, "uid", "a dashboard needs a stable uid"))
            continue
        problems += check_expressions(grafana_expressions(dashboard), file=shown)
    return problems


def alert_test_coverage(
    rule_files: Sequence[Path], test_files: Sequence[Path], *, project: Project | None = None
) -> list[Problem]:
    """Every alert needs a unit test where it fires and one where it does not."""
    firing: set[str] = set()
    silent: set[str] = set()
    for test_file in test_files:
        for test in (yaml.safe_load(test_file.read_text()) or {}).get("tests") or []:
            for case in test.get("alert_rule_test") or []:
                (firing if case.get("exp_alerts") else silent).add(str(case.get("alertname")))
    problems: list[Problem] = []
    for rule_file in rule_files:
        groups = (yaml.safe_load(rule_file.read_text()) or {}).get("groups") or []
        for g, group in enumerate(groups):
            for r, rule in enumerate(group.get("rules") or []):
                name = rule.get("alert")
                missing = [
                    kind
                    for kind, seen in (("fires", firing), ("stays silent", silent))
                    if name and name not in seen
                ]
                if missing:
                    problems.append(
                        Problem(
                            _show(rule_file, project),
                            f"groups[{g}].rules[{r}]",
                            (
                                f"alert {name} has no promtool test case where it "
                                + " and none where it ".join(missing)
                            ),
                        )
                    )
    return problems


def monitoring_problems(project: Project) -> list[Problem]:
    """All of the above over `cluster/monitoring/`: rules, rule unit tests and their coverage,
    prometheus.yml, alertmanager.yml and the Grafana dashboards."""
    base = project.cluster / "monitoring"
    rules = sorted((base / "prometheus" / "rules").glob("*.yml"))
    tests = sorted((base / "prometheus" / "tests").glob("*.yml"))
    return [
        *check_rules(rules, project=project),
        *test_rules(tests, project=project),
        *alert_test_coverage(rules, tests, project=project),
        *check_config(base / "prometheus" / "prometheus.yml", project=project),
        *check_alertmanager_config(base / "alertmanager" / "alertmanager.yml", project=project),
        *check_dashboards(
            sorted((base / "grafana" / "dashboards").glob("*.json")), project=project
        ),
    ]


# The name is the promtool subcommand's, not a pytest test: keep pytest from collecting it.
test_rules.__test__ = False  # type: ignore[attr-defined]
