"""`finchsim validate`: every input file and overlay, checked offline, all problems at once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from finchsim.analysis.targets import Targets
from finchsim.errors import InputError, Problem
from finchsim.inputs import API_VERSION, Document, load_document, read_yaml
from finchsim.load.profile import LoadProfile
from finchsim.platform import manifests, promtool, schemas
from finchsim.platform.controlplane.spec import ControlPlaneSpec
from finchsim.platform.local.settings import LocalPlatformSettings
from finchsim.project import Project

# Every kind of harness file, by the `kind:` it declares. New input kinds register here.
DOCUMENT_KINDS: dict[str, type[Document]] = {
    "Targets": Targets,
    "LoadProfile": LoadProfile,
    "LocalPlatform": LocalPlatformSettings,
    "ControlPlaneBinaries": ControlPlaneSpec,
}


@dataclass
class Report:
    """What was checked and what was wrong; `problems` empty means everything is valid."""

    checked: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def validate_project(project: Project, progress: Callable[[str], None] | None = None) -> Report:
    """Check harness files, every kustomize build target and the monitoring configuration."""
    report = Report()
    say = progress or (lambda _msg: None)
    for path in harness_files(project):
        try:
            _check_document(project, path)
        except InputError as exc:
            report.problems += exc.problems
        report.checked.append(project.rel(path))
    crds = schemas.load_crd_schemas(project.cluster / "crds")
    for name in manifests.build_targets(project):
        say(f"building {name}")
        try:
            objects = manifests.render(project, name)
        except InputError as exc:
            report.problems += exc.problems
            continue
        report.problems += schemas.validate_objects(objects, crds)
        report.checked.append(f"overlay {name} ({len(objects)} objects)")
    if (project.cluster / "monitoring").is_dir():
        say("checking Prometheus and Alertmanager configuration")
        report.problems += promtool.monitoring_problems(project)
        report.checked.append("monitoring rules, rule tests and configuration")
    return report


def harness_files(project: Project) -> list[Path]:
    """Every harness YAML file: scenarios, loadtests, analysis, the platform settings and the
    pinned control-plane binaries."""
    found: list[Path] = []
    for folder in (
        project.scenarios,
        project.loadtests,
        project.analysis,
        project.cluster / "local",
        project.cluster / "controlplane",
    ):
        found += sorted(p for p in folder.rglob("*.y*ml") if p.suffix in (".yaml", ".yml"))
    return found


def _check_document(project: Project, path: Path) -> None:
    shown = project.rel(path)
    data = read_yaml(path, shown)
    kind = data.get("kind") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("apiVersion") != API_VERSION:
        raise InputError([Problem(shown, "apiVersion", f"expected {API_VERSION!r}")])
    if kind not in DOCUMENT_KINDS:
        valid = ", ".join(sorted(DOCUMENT_KINDS))
        raise InputError([Problem(shown, "kind", f"expected one of: {valid}; got {kind!r}")])
    load_document(path, DOCUMENT_KINDS[kind], shown)
