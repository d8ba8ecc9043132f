"""The pinned control-plane binaries in a cache outside the repo: obtain, verify, locate.

Cache: `$FINCHSIM_CACHE`, else `${XDG_CACHE_HOME:-~/.cache}/finchsim`, then
`controlplane/<one directory per version set>/bin/`, with `manifest.json` beside `bin/`
recording how each binary was obtained. Everything is made in a `.tmp-*` directory next to
`bin/` and renamed into place only after its `--version` was checked (and, for a download, the
artefact's checksum), so an interrupted run never leaves a half binary that looks valid.

Sources (`--from`, default from $FINCHSIM_BINARIES_FROM, else auto):
- download: the official artefacts listed in the data file, checked against its checksums;
  binaries without one (kwok, kwokctl, metrics-server: upstream publishes no checksums) are
  built anyway;
- build: everything from the Go module proxy (gobuild.py);
- auto: download what can be downloaded when its host answers within 3 s, build the rest.
"""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from finchsim.errors import CommandError, InputError, PlatformError, Problem
from finchsim.platform.controlplane.manifest import intact, read_manifest
from finchsim.platform.controlplane.obtain import Say, build_rest, download_what_can
from finchsim.platform.controlplane.spec import (
    BINARY_NAMES,
    BinaryName,
    ControlPlaneSpec,
    load_spec,
)
from finchsim.project import Project

SOURCES = ("auto", "download", "build")
SOURCE_ENV = "FINCHSIM_BINARIES_FROM"
_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class ControlPlaneBinaries:
    """The path of each pinned binary in one version set's cache directory."""

    directory: Path
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kwok: Path
    kwokctl: Path
    metrics_server: Path

    @classmethod
    def at(cls, directory: Path) -> ControlPlaneBinaries:
        paths = {name.replace("-", "_"): directory / "bin" / name for name in BINARY_NAMES}
        return cls(directory, **paths)

    def by_name(self) -> dict[str, Path]:
        return {name: getattr(self, name.replace("-", "_")) for name in BINARY_NAMES}


def cache_root(env: Mapping[str, str] | None = None) -> Path:
    """`$FINCHSIM_CACHE`, else `${XDG_CACHE_HOME:-~/.cache}/finchsim`."""
    env = os.environ if env is None else env
    if env.get("FINCHSIM_CACHE"):
        return Path(env["FINCHSIM_CACHE"]).expanduser()
    xdg = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "finchsim"


def machine_arch() -> str:
    machine = platform.machine()
    if platform.system() != "Linux" or machine not in _ARCHES:
        raise PlatformError(
            f"the control-plane binaries are pinned for linux amd64 and arm64 "
            f"only, not {platform.system()} {machine}"
        )
    return _ARCHES[machine]


def set_directory(spec: ControlPlaneSpec, arch: str, env: Mapping[str, str] | None) -> Path:
    return cache_root(env) / "controlplane" / spec.set_name(arch)


def controlplane_binaries(
    project: Project, env: Mapping[str, str] | None = None
) -> ControlPlaneBinaries:
    """The pinned binaries' paths; a PlatformError saying to run `make controlplane` when any
    is missing or is not the one recorded. Cheap: sizes are compared, files are not hashed."""
    spec = load_spec(project)
    found = ControlPlaneBinaries.at(set_directory(spec, machine_arch(), env))
    entries = read_manifest(found.directory)
    missing = [
        name
        for name, path in found.by_name().items()
        if not intact(entries.get(name), path, spec.binaries[name].version, hashed=False)  # type: ignore[index]
    ]
    if missing:
        raise PlatformError(
            f"control-plane binaries missing from {found.directory / 'bin'}: "
            f"{', '.join(missing)}; run `make controlplane`"
        )
    return found


def obtain_controlplane(
    project: Project, source: str, say: Say, env: Mapping[str, str] | None = None
) -> ControlPlaneBinaries:
    """`finchsim controlplane`: make sure every pinned binary is in the cache."""
    spec = load_spec(project)
    arch = machine_arch()
    return ensure_binaries(spec, source, set_directory(spec, arch, env), arch, say)


def ensure_binaries(
    spec: ControlPlaneSpec, source: str, directory: Path, arch: str, say: Say
) -> ControlPlaneBinaries:
    """Obtain every binary of `spec` that `directory` lacks; idempotent, and a no-op (one
    `cached` line per binary) when all are present and still match their recorded sha256."""
    if source not in SOURCES:
        raise InputError(
            [Problem(SOURCE_ENV, "", f"expected one of {', '.join(SOURCES)}, got {source!r}")]
        )
    (directory / "bin").mkdir(parents=True, exist_ok=True)
    with _locked(directory, say):
        _remove_leftovers(directory)
        entries = read_manifest(directory)
        todo: list[BinaryName] = []
        for name, binary in spec.binaries.items():
            if intact(entries.get(name), directory / "bin" / name, binary.version, hashed=True):
                say(f"{name} {binary.version}: cached")
            else:
                todo.append(name)
        if todo:
            work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=directory))
            keep = False
            try:
                rest = download_what_can(spec, todo, source, arch, directory, work, entries, say)
                build_rest(spec, rest, directory, work, entries, say)
            except CommandError as exc:
                keep = True  # the pasteable command runs in there
                note = f"(its directory {work} is kept; the next run removes it)"
                raise CommandError(exc.argv, exc.returncode, f"{exc.output}\n{note}") from exc
            finally:
                if not keep:
                    shutil.rmtree(work, ignore_errors=True)
    return ControlPlaneBinaries.at(directory)


@contextmanager
def _locked(directory: Path, say: Say) -> Iterator[None]:
    with (directory / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another `finchsim controlplane` working in {directory} …")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _remove_leftovers(directory: Path) -> None:
    for leftover in directory.glob(".tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
