"""cluster/controlplane/binaries.yaml: the pinned versions and official checksums, validated."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from finchsim.errors import InputError
from finchsim.inputs import load_document
from finchsim.platform.controlplane.spec import (
    BINARY_NAMES,
    ControlPlaneSpec,
    load_spec,
    spec_path,
)
from finchsim.project import Project
from finchsim.validate import harness_files
from tests.conftest import REPO

PINNED = {
    "etcd": "v3.6.14",
    "kube-apiserver": "v1.34.4",
    "kube-controller-manager": "v1.34.4",
    "kube-scheduler": "v1.34.4",
    "kwok": "v0.7.0",
    "kwokctl": "v0.7.0",
    "metrics-server": "v0.8.0",
}


def test_the_data_file_validates_and_pins_the_issue_versions() -> None:
    spec = load_spec(Project(REPO))
    assert {name: b.version for name, b in spec.binaries.items()} == PINNED


def test_validate_checks_the_data_file() -> None:
    project = Project(REPO)
    assert spec_path(project) in harness_files(project)


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_downloads_where_upstream_publishes_checksums(arch: str) -> None:
    spec = load_spec(Project(REPO))
    algorithms = {}
    for name in BINARY_NAMES:
        artefact = spec.download_for(name, arch)
        algorithms[name] = artefact.algorithm if artefact else None
    # Kubernetes publishes sha512 of its server tarball, etcd a SHA256SUMS file; kwok and
    # metrics-server publish no checksums, so they are built on every machine.
    assert algorithms == {
        "etcd": "sha256",
        "kube-apiserver": "sha512",
        "kube-controller-manager": "sha512",
        "kube-scheduler": "sha512",
        "kwok": None,
        "kwokctl": None,
        "metrics-server": None,
    }
    kube = spec.download_for("kube-apiserver", arch)
    assert kube is not None
    assert kube.url == f"https://dl.k8s.io/v1.34.4/kubernetes-server-linux-{arch}.tar.gz"


def test_the_cache_directory_follows_the_pins() -> None:
    spec = load_spec(Project(REPO))
    name = spec.set_name("amd64")
    assert name.startswith("kubernetes-v1.34.4-linux-amd64-")
    assert spec.set_name("arm64") != name
    changed = spec.model_copy(
        update={
            "binaries": {
                **spec.binaries,
                "kwok": spec.binaries["kwok"].model_copy(update={"version": "v0.7.1"}),
            }
        }
    )
    assert changed.set_name("amd64") != name


def problems(scratch: Callable[[dict[str, str]], Project], text: str) -> list[str]:
    project = scratch({"cluster/controlplane/binaries.yaml": text})
    with pytest.raises(InputError) as caught:
        load_document(spec_path(project), ControlPlaneSpec, "binaries.yaml")
    return [str(p) for p in caught.value.problems]


BINARIES = "\n".join(
    f"  {name}: {{version: v1.0.0, versionOutput: x, build: {{package: example.com/{name}}}}}"
    for name in BINARY_NAMES
)


def test_a_download_needs_exactly_one_published_checksum(
    scratch_project: Callable[[dict[str, str]], Project],
) -> None:
    text = f"""\
apiVersion: finchsim/v1
kind: ControlPlaneBinaries
binaries:
{BINARIES}
downloads:
  - {{url: https://example.com/a.tar.gz, arch: amd64, binaries: {{etcd: etcd}}}}
  - url: https://example.com/b.tar.gz
    arch: amd64
    sha256: {"a" * 64}
    sha512: {"b" * 128}
    binaries: {{kwok: null}}
  - {{url: https://example.com/c, arch: arm64, sha256: tooshort, binaries: {{kwokctl: null}}}}
"""
    assert problems(scratch_project, text) == [
        "binaries.yaml: downloads[0]: Value error, give exactly one of sha256 or sha512 (the "
        "one upstream publishes)",
        "binaries.yaml: downloads[1]: Value error, give exactly one of sha256 or sha512 (the "
        "one upstream publishes)",
        "binaries.yaml: downloads[2].sha256: String should match pattern '^[0-9a-f]{64}$'",
    ]


def test_binary_names_and_versions_are_checked(
    scratch_project: Callable[[dict[str, str]], Project],
) -> None:
    text = """\
apiVersion: finchsim/v1
kind: ControlPlaneBinaries
binaries:
  etcd: {version: 3.6.14, versionOutput: x, build: {package: go.etcd.io/etcd/server/v3}}
  kube-apiservr: {version: v1.34.4, versionOutput: x, build: {package: k8s.io/x}}
"""
    assert problems(scratch_project, text) == [
        "binaries.yaml: binaries.etcd.version: String should match pattern '^v\\d+\\.\\d+\\.\\d+$'",
        "binaries.yaml: binaries.kube-apiservr.[key]: expected 'etcd', 'kube-apiserver', "
        "'kube-controller-manager', 'kube-scheduler', 'kwok', 'kwokctl' or 'metrics-server', "
        "got 'kube-apiservr'",
    ]


def test_every_binary_is_pinned(scratch_project: Callable[[dict[str, str]], Project]) -> None:
    text = """\
apiVersion: finchsim/v1
kind: ControlPlaneBinaries
binaries:
  etcd: {version: v3.6.14, versionOutput: x, build: {package: go.etcd.io/etcd/server/v3}}
"""
    assert problems(scratch_project, text) == [
        "binaries.yaml: binaries: Value error, missing binaries: kube-apiserver, "
        "kube-controller-manager, kube-scheduler, kwok, kwokctl, metrics-server"
    ]


def test_a_wrapper_takes_its_go_directive_from_one_place(tmp_path: Path) -> None:
    path = tmp_path / "binaries.yaml"
    wrapper = "{module: k8s.io/kubernetes, stagingReplaces: true, goDirective: '1.24'}"
    lines = BINARIES.replace(
        "{package: example.com/etcd}", f"{{package: example.com/etcd, wrapper: {wrapper}}}"
    )
    path.write_text(f"apiVersion: finchsim/v1\nkind: ControlPlaneBinaries\nbinaries:\n{lines}\n")
    with pytest.raises(InputError) as caught:
        load_document(path, ControlPlaneSpec, "binaries.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "binaries.yaml: binaries.etcd.build.wrapper: Value error, set goDirective, or "
        "stagingReplaces to copy it from the module"
    ]
