"""Every overlay builds with kustomize and every rendered object is schema-valid (strict)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from finchsim.errors import InputError
from finchsim.platform import manifests, schemas
from finchsim.project import Project
from tests.conftest import REPO

TARGETS = sorted(manifests.build_targets(Project(REPO)))
EXPECTED_TARGETS = {"production", "staging", "recommended", "monitoring"}


def test_the_documented_overlays_exist() -> None:
    assert set(TARGETS) >= EXPECTED_TARGETS


@pytest.mark.parametrize("target", TARGETS)
def test_overlay_renders_strictly_valid_objects(project: Project, target: str) -> None:
    objects = manifests.render(project, target)
    assert objects, f"{target} rendered nothing"
    problems = schemas.validate_objects(objects, schemas.load_crd_schemas(project.cluster / "crds"))
    assert not problems, "\n".join(str(p) for p in problems)


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_names_its_source_file(project: Project, target: str) -> None:
    for item in manifests.render(project, target):
        assert (project.root / item.source).is_file(), f"{item.ref}: source {item.source}"


def test_overlays_render_their_namespaces(project: Project) -> None:
    # node-exporter needs host access, so it has a privileged namespace of its own.
    expected = {
        "production": {"finch-production"},
        "staging": {"finch-staging"},
        "recommended": {"finch-production"},
        "monitoring": {"finch-monitoring", "finch-node-exporter"},
    }
    for target, namespaces in expected.items():
        found = {o.namespace for o in manifests.render(project, target) if o.namespace}
        assert found == namespaces, f"{target}: {found}"


def test_no_secret_value_is_committed(project: Project) -> None:
    """Secrets come only from the git-ignored generated files."""
    for target in TARGETS:
        for item in manifests.render(project, target):
            if item.kind == "Secret":
                assert "cluster/secrets/" in item.source, f"{item.ref} defined in {item.source}"


BAD_KUSTOMIZATION = {
    "cluster/overlays/broken/kustomization.yaml": """\
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        resources: [deployment.yaml]
        """,
    "cluster/overlays/broken/deployment.yaml": "apiVersion: apps/v1\nkind: [Deployment\n",
}


def test_malformed_overlay_gives_one_error_naming_the_file(
    scratch_project: Callable[[dict[str, str]], Project],
) -> None:
    proj = scratch_project(BAD_KUSTOMIZATION)
    with pytest.raises(InputError) as info:
        manifests.render(proj, "broken")
    assert len(info.value.problems) == 1
    problem = info.value.problems[0]
    assert problem.file == "cluster/overlays/broken/kustomization.yaml"
    assert "kustomize build failed" in problem.message
    assert "deployment.yaml" in problem.message


INVALID_OBJECT = {
    "cluster/overlays/typo/kustomization.yaml": """\
        apiVersion: kustomize.config.k8s.io/v1beta1
        kind: Kustomization
        namespace: demo
        buildMetadata: [originAnnotations]
        resources: [service.yaml]
        """,
    "cluster/overlays/typo/service.yaml": """\
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec:
          selector: {app: web}
          ports: [{port: 80, targetPrt: 8080}]
        """,
}


def test_invalid_object_is_reported_against_its_source_file(
    scratch_project: Callable[[dict[str, str]], Project],
) -> None:
    proj = scratch_project(INVALID_OBJECT)
    problems = schemas.validate_objects(manifests.render(proj, "typo"), {})
    assert [str(p) for p in problems] == [
        "cluster/overlays/typo/service.yaml: Service/demo/web spec.ports.0: "
        "Additional properties are not allowed ('targetPrt' was unexpected)"
    ]


def test_unknown_overlay_lists_the_valid_ones(project: Project) -> None:
    with pytest.raises(InputError) as info:
        manifests.render(project, "prod")
    assert "unknown overlay 'prod'; expected one of: " in str(info.value)
    assert "production" in str(info.value)
