"""What the local platform needs of a run's inputs beyond what every platform needs: its
settings file, and a local program for every container image (it has no container runtime)."""

from __future__ import annotations

from finchsim.errors import InputError, Problem
from finchsim.platform.local.runtimes import runtime_for
from finchsim.platform.local.settings import load_settings
from finchsim.platform.manifests import Rendered
from finchsim.platform.topology import WORKLOAD_KINDS, Container, Resources
from finchsim.project import Project

SETTINGS_FILE = "cluster/local/platform.yaml"


def input_problems(project: Project, objects: list[Rendered]) -> list[Problem]:
    """Every problem of the settings file and of the overlay's images, for the local platform."""
    problems: list[Problem] = []
    try:
        load_settings(project.root / SETTINGS_FILE, SETTINGS_FILE)
    except InputError as exc:
        problems += exc.problems
    return problems + runtime_problems(objects)


def runtime_problems(objects: list[Rendered]) -> list[Problem]:
    """Every container's image must map to a local program (the local platform has no
    container runtime); otherwise the pod would fail only once `up` creates it."""
    problems: list[Problem] = []
    for item in objects:
        spec = item.obj.get("spec") or {}
        if item.kind == "CronJob":
            spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
        elif item.kind not in WORKLOAD_KINDS:
            continue
        pod = (spec.get("template") or {}).get("spec") or {}
        for raw in (pod.get("initContainers") or []) + (pod.get("containers") or []):
            container = Container(
                raw.get("name", ""), raw.get("image", ""), (), (), {}, {}, Resources()
            )
            try:
                runtime_for(container, item.source)
            except InputError as exc:
                problems += exc.problems
    return problems
