"""Rendering `cluster/` with kustomize into plain Kubernetes objects.

Every build target is a directory with a kustomization.yaml: each overlay under
`cluster/overlays/` plus `cluster/monitoring/`. Rendered objects keep kustomize's origin
annotation so that a problem can be reported against the file the user edits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from finchsim.errors import CommandError, InputError, Problem
from finchsim.platform.secrets import secret_files
from finchsim.platform.tools import find_tool, run
from finchsim.project import Project

ORIGIN_ANNOTATION = "config.kubernetes.io/origin"


@dataclass(frozen=True)
class Rendered:
    """One object out of a kustomize build, with the source file it came from."""

    obj: dict[str, Any]
    source: str  # project-relative path of the file that defined it

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def name(self) -> str:
        return str(self.obj.get("metadata", {}).get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.obj.get("metadata", {}).get("namespace", ""))

    @property
    def ref(self) -> str:
        """`Kind/namespace/name`, the way problems name an object."""
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{ns}{self.name}"


@dataclass(frozen=True)
class BuildTarget:
    name: str
    path: Path
    objects: list[Rendered] = field(default_factory=list)


def build_targets(project: Project) -> dict[str, Path]:
    """Every kustomize build target in the project, by name (`production`, `monitoring`, ...)."""
    targets: dict[str, Path] = {}
    overlays = project.cluster / "overlays"
    if overlays.is_dir():
        for child in sorted(overlays.iterdir()):
            if (child / "kustomization.yaml").is_file():
                targets[child.name] = child
    monitoring = project.cluster / "monitoring"
    if (monitoring / "kustomization.yaml").is_file():
        targets["monitoring"] = monitoring
    return targets


def render(project: Project, target: str) -> list[Rendered]:
    """Build one target with the pinned kubectl's kustomize and return its objects.

    Raises InputError naming the target's directory when the build fails or the output is not
    a stream of Kubernetes objects."""
    targets = build_targets(project)
    if target not in targets:
        valid = ", ".join(sorted(targets)) or "none found"
        raise InputError(
            [
                Problem(
                    project.rel(project.cluster),
                    "",
                    (f"unknown overlay {target!r}; expected one of: {valid}"),
                )
            ]
        )
    path = targets[target]
    where = project.rel(path)
    try:
        out = run([find_tool("kubectl"), "kustomize", str(path)])
    except CommandError as exc:
        missing = [p for p in secret_files(project) if not p.exists() and p.name in exc.output]
        if missing:
            # The usual cause on a fresh checkout: say what to run, not kustomize's stack.
            raise InputError(
                [
                    Problem(
                        project.rel(m),
                        "",
                        (
                            "generated secret file is missing: "
                            "run `make setup` (or `finchsim secrets`)"
                        ),
                    )
                    for m in missing
                ]
            ) from exc
        message = exc.output.strip().splitlines()[-1] if exc.output.strip() else str(exc)
        raise InputError(
            [Problem(f"{where}/kustomization.yaml", "", f"kustomize build failed: {message}")]
        ) from exc
    objects: list[Rendered] = []
    for doc in yaml.safe_load_all(out):
        if not doc:
            continue
        if not isinstance(doc, dict) or "kind" not in doc:
            raise InputError([Problem(where, "", "kustomize produced a non-object document")])
        objects.append(Rendered(doc, _source(project, path, doc)))
    return objects


def _source(project: Project, target: Path, obj: dict[str, Any]) -> str:
    annotations = obj.get("metadata", {}).get("annotations") or {}
    origin = annotations.get(ORIGIN_ANNOTATION)
    if origin:
        # Generated objects (secretGenerator, ...) carry `configuredIn` instead of `path`.
        parsed = yaml.safe_load(origin)
        rel = parsed.get("path") or parsed.get("configuredIn")
        if rel:
            return project.rel((target / rel).resolve())
    return project.rel(target / "kustomization.yaml")


def load_files(project: Project, folder: Path) -> list[Rendered]:
    """Every object of the plain YAML files in `folder` (no kustomize), e.g. `cluster/crds/`."""
    objects: list[Rendered] = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        if path.name != "kustomization.yaml":
            objects += load_file(project, path)
    return objects


def load_file(project: Project, path: Path) -> list[Rendered]:
    """Every object of one plain YAML file."""
    shown = project.rel(path)
    objects: list[Rendered] = []
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc:
            continue
        if not isinstance(doc, dict) or "kind" not in doc:
            raise InputError([Problem(shown, "", "expected Kubernetes objects")])
        objects.append(Rendered(doc, shown))
    return objects
