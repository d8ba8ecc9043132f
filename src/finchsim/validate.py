"""Every input checked offline, all problems at once: `finchsim validate` checks the whole
project; `check_run_inputs` checks what one run reads, before the run starts anything."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from finchsim.analysis.targets import Targets, load_targets
from finchsim.errors import InputError, Problem
from finchsim.inputs import API_VERSION, Document, load_document, read_yaml
from finchsim.load.profile import LoadProfile, load_profile
from finchsim.models.load import LoadModelFile
from finchsim.platform import manifests, promtool, runstate, schemas
from finchsim.platform.controlplane.spec import ControlPlaneSpec
from finchsim.platform.local.settings import LocalPlatformSettings
from finchsim.platform.manifests import Rendered
from finchsim.platform.providers.kwok_settings import KwokClusterSettings
from finchsim.platform.references import reference_problems
from finchsim.platform.registry import platform_input_problems, server_dry_run
from finchsim.platform.topology import (
    Topology,
    build_topology,
)
from finchsim.project import Project

T = TypeVar("T")

# Every kind of harness file, by the `kind:` it declares. New input kinds register here.
DOCUMENT_KINDS: dict[str, type[Document]] = {
    "Targets": Targets,
    "LoadProfile": LoadProfile,
    "LocalPlatform": LocalPlatformSettings,
    "ControlPlaneBinaries": ControlPlaneSpec,
    "KwokCluster": KwokClusterSettings,
    "LoadModel": LoadModelFile,
}


@dataclass
class Report:
    """What was checked and what was wrong; `problems` empty means everything is valid."""

    checked: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def validate_project(
    project: Project, progress: Callable[[str], None] | None = None, server: bool = True
) -> Report:
    """Check harness files, every kustomize build target and the monitoring configuration;
    with `server`, also let a throwaway kube-apiserver check every object that passed the
    offline checks (`kubectl apply --dry-run=server`, admission included)."""
    report = Report()
    say = progress or (lambda _msg: None)
    for path in harness_files(project):
        try:
            _check_document(project, path)
        except InputError as exc:
            report.problems += exc.problems
        report.checked.append(project.rel(path))
    crds = schemas.load_crd_schemas(project.cluster / "crds")
    clean: dict[str, list[Rendered]] = {}
    for name in manifests.build_targets(project):
        say(f"building {name}")
        overlay = check_overlay(project, name, crds)
        report.problems += overlay.problems
        if overlay.objects:
            report.checked.append(f"overlay {name} ({len(overlay.objects)} objects)")
        if overlay.objects and not overlay.problems:
            clean[name] = overlay.objects
    kwok_storage = project.cluster / "kwok" / "storage.yaml"
    if kwok_storage.is_file():
        storage = manifests.load_file(project, kwok_storage)
        report.problems += schemas.validate_objects(storage, crds)
        report.checked.append(f"{project.rel(kwok_storage)} ({len(storage)} objects)")
    if server and clean:
        say("server-side dry run on a throwaway kube-apiserver")
        report.problems += server_dry_run(project, clean)
        report.checked.append(
            "server-side dry run (kube-apiserver v1.34, admission included) of " + ", ".join(clean)
        )
    if (project.cluster / "monitoring").is_dir():
        say("checking Prometheus and Alertmanager configuration")
        report.problems += promtool.monitoring_problems(project)
        report.checked.append("monitoring rules, rule tests and configuration")
    # Overlays share their base and the generated secrets: one line per problem, not per overlay.
    report.problems = list(dict.fromkeys(report.problems))
    return report


@dataclass
class Overlay:
    """One build target, rendered and typed; `problems` empty means a platform can run it."""

    name: str
    objects: list[Rendered] = field(default_factory=list)
    topology: Topology | None = None
    problems: list[Problem] = field(default_factory=list)


def check_overlay(project: Project, name: str, crds: schemas.CrdSchemas | None = None) -> Overlay:
    """Render one target, validate it against the schemas, type it as the platforms read it
    (every quantity, count and schedule) and check what its pods refer to exists."""
    result = Overlay(name)
    try:
        result.objects = manifests.render(project, name)
    except InputError as exc:
        result.problems += exc.problems
        return result
    if crds is None:
        crds = schemas.load_crd_schemas(project.cluster / "crds")
    result.problems += schemas.validate_objects(result.objects, crds)
    if not result.problems:  # typing assumes the schema's shape
        try:
            result.topology = build_topology(result.objects)
        except InputError as exc:
            result.problems += exc.problems
    result.problems += reference_problems(result.objects)
    return result


@dataclass(frozen=True)
class RunInputs:
    """Everything a run reads, loaded and valid."""

    overlay: Overlay
    topology: Topology
    targets: Targets
    profile: LoadProfile | None


def check_run_inputs(
    project: Project, overlay: str, profile: str | None = None, platform: str = "local"
) -> RunInputs:
    """Load every input of a run (the load profile by name, the targets, the overlay, and what
    the platform itself reads: its settings, ...); raise one InputError listing every problem.
    Run commands call this before they start anything."""
    problems: list[Problem] = []

    def load(loader: Callable[[Path, str], T], path: Path) -> T | None:
        try:
            return loader(path, project.rel(path))
        except InputError as exc:
            problems.extend(exc.problems)
            return None

    loaded_profile = None
    if profile is not None:
        path = project.loadtests / "profiles" / f"{profile}.yaml"
        if path.is_file():
            loaded_profile = load(load_profile, path)
        else:
            have = ", ".join(sorted(p.stem for p in path.parent.glob("*.yaml"))) or "none"
            problems.append(Problem(project.rel(path), "", f"no such load profile; have: {have}"))
    targets = load(load_targets, project.analysis / "targets.yaml")
    checked = check_overlay(project, overlay)
    problems += checked.problems
    problems += platform_input_problems(platform, project, checked.objects)
    try:
        runstate.read_state(project)  # a corrupt record of what is up, before anything starts
    except InputError as exc:
        problems.extend(exc.problems)
    if problems:
        raise InputError(list(dict.fromkeys(problems)))
    assert targets is not None and checked.topology is not None
    return RunInputs(checked, checked.topology, targets, loaded_profile)


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
    kwok = project.cluster / "kwok" / "cluster.yaml"  # beside it: Kubernetes objects
    return found + ([kwok] if kwok.is_file() else [])


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
