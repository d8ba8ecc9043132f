"""`cluster/controlplane/binaries.yaml` (kind `ControlPlaneBinaries`) as a strict model.

The file pins each control-plane binary's version, how it is built from the Go module proxy,
and the official artefacts (with their published checksums) it may be downloaded from."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from finchsim.inputs import Document, Strict, load_document
from finchsim.project import Project

BinaryName = Literal[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kwokctl",
    "metrics-server",
]
BINARY_NAMES: tuple[BinaryName, ...] = BinaryName.__args__  # type: ignore[attr-defined]
Arch = Literal["amd64", "arm64"]

_SEMVER = r"^v\d+\.\d+\.\d+$"
_GO_VERSION = r"^1\.\d+(\.\d+)?$"


class Wrapper(Strict):
    """A generated wrapper module that requires `module` at the binary's version.

    With `stagingReplaces`, its go directive and godebug lines come from that module's own
    go.mod, and every module that go.mod replaces with `./staging/...` is replaced with its
    published version (Kubernetes: k8s.io/<m> v0.<minor>.<patch>)."""

    module: str
    goDirective: str | None = Field(default=None, pattern=_GO_VERSION)
    stagingReplaces: bool = False

    @model_validator(mode="after")
    def _one_source_of_go_directive(self) -> Wrapper:
        if self.stagingReplaces == (self.goDirective is not None):
            raise ValueError("set goDirective, or stagingReplaces to copy it from the module")
        return self


class Build(Strict):
    """How a binary is built: `go install package@version`, or `go build` in a wrapper."""

    package: str
    ldflags: list[str] = Field(default_factory=list)
    wrapper: Wrapper | None = None


class Binary(Strict):
    version: str = Field(pattern=_SEMVER)
    versionOutput: str = Field(min_length=1, description="what `--version` must print")
    build: Build


class Download(Strict):
    """An official artefact, its published checksum, and the binaries it holds.

    `binaries` maps a binary to its path inside the tar.gz; null when the file is the binary."""

    url: str = Field(pattern=r"^https?://[^/]+/.+")
    arch: Arch
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    sha512: str | None = Field(default=None, pattern=r"^[0-9a-f]{128}$")
    binaries: dict[BinaryName, str | None] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_checksum(self) -> Download:
        if (self.sha256 is None) == (self.sha512 is None):
            raise ValueError("give exactly one of sha256 or sha512 (the one upstream publishes)")
        return self

    @property
    def algorithm(self) -> str:
        return "sha256" if self.sha256 is not None else "sha512"

    @property
    def digest(self) -> str:
        return self.sha256 or self.sha512 or ""

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


class ControlPlaneSpec(Document):
    """Every pinned binary (all of BINARY_NAMES) and the artefacts that may provide them."""

    kind: Literal["ControlPlaneBinaries"]
    binaries: dict[BinaryName, Binary]
    downloads: list[Download] = Field(default_factory=list)

    @field_validator("binaries")
    @classmethod
    def _all_binaries(cls, value: dict[BinaryName, Binary]) -> dict[BinaryName, Binary]:
        missing = [name for name in BINARY_NAMES if name not in value]
        if missing:
            raise ValueError(f"missing binaries: {', '.join(missing)}")
        return value

    @model_validator(mode="after")
    def _one_artefact_per_binary_and_arch(self) -> ControlPlaneSpec:
        seen: set[tuple[str, str]] = set()
        for download in self.downloads:
            for name in download.binaries:
                if (name, download.arch) in seen:
                    raise ValueError(f"two downloads provide {name} for {download.arch}")
                seen.add((name, download.arch))
        return self

    def download_for(self, name: BinaryName, arch: str) -> Download | None:
        """The official artefact that provides `name` on `arch`, if its checksum is known."""
        for download in self.downloads:
            if download.arch == arch and name in download.binaries:
                return download
        return None

    def set_name(self, arch: str) -> str:
        """The cache directory of this version set on `arch`: readable, and new on any change
        of a version, a build recipe or an artefact for that architecture."""
        relevant = {
            "binaries": {n: b.model_dump() for n, b in self.binaries.items()},
            "downloads": [d.model_dump() for d in self.downloads if d.arch == arch],
        }
        digest = hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:10]
        kube = self.binaries["kube-apiserver"].version
        return f"kubernetes-{kube}-linux-{arch}-{digest}"


def spec_path(project: Project) -> Path:
    return project.cluster / "controlplane" / "binaries.yaml"


def load_spec(project: Project) -> ControlPlaneSpec:
    """The project's pinned control-plane binaries; an InputError lists every problem."""
    path = spec_path(project)
    return load_document(path, ControlPlaneSpec, project.rel(path))


def staging_version(kube_version: str) -> str:
    """The version Kubernetes publishes its staging modules under: v1.34.4 -> v0.34.4."""
    match = re.fullmatch(r"v1\.(\d+)\.(\d+)", kube_version)
    if match is None:
        raise ValueError(f"not a Kubernetes 1.x release: {kube_version}")
    return f"v0.{match.group(1)}.{match.group(2)}"
