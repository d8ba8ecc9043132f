"""Obtaining binaries that a cache directory lacks: official downloads first, then Go builds.

Each binary is made in the caller's work directory, its `--version` checked, and only then
renamed into `bin/` and recorded in the manifest."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from finchsim.errors import PlatformError
from finchsim.platform.controlplane import download, gobuild
from finchsim.platform.controlplane.manifest import Entry, file_sha256, write_manifest
from finchsim.platform.controlplane.spec import Binary, BinaryName, ControlPlaneSpec, Download


class Say(Protocol):
    """Where progress goes: one call per line, or a line in two parts (`end=""` first)."""

    def __call__(self, text: str, *, end: str = "\n") -> None: ...


def download_what_can(
    spec: ControlPlaneSpec,
    todo: list[BinaryName],
    source: str,
    arch: str,
    directory: Path,
    work: Path,
    entries: dict[str, Entry],
    say: Say,
) -> list[BinaryName]:
    """Download and install what can be; the binaries still to build. Every artefact is
    fetched and verified before anything is installed from any of them."""
    plan: dict[str, tuple[Download, list[BinaryName]]] = {}
    for name in todo if source != "build" else []:
        artefact = spec.download_for(name, arch)
        if artefact is not None:
            plan.setdefault(artefact.url, (artefact, []))[1].append(name)
    verified: list[tuple[Download, Path, list[BinaryName]]] = []
    for url, (artefact, names) in plan.items():
        host = urlsplit(url).hostname
        if source == "auto" and not download.answers(url):
            say(
                f"{host} does not answer within {download.PROBE_TIMEOUT:.0f} s: "
                f"building {', '.join(names)} instead"
            )
            continue
        say(f"downloading {artefact.filename} … ", end="")
        started = time.monotonic()
        try:
            path = download.fetch_verified(artefact, work / "downloads")
        except PlatformError:
            say("refused")
            raise
        except download.Unreachable as exc:
            say("failed")
            if source == "download":
                raise PlatformError(f"cannot download {exc}") from exc
            say(f"could not download from {host} ({exc}): building {', '.join(names)} instead")
            continue
        say(f"done in {_secs(started)} s, {artefact.algorithm} verified")
        verified.append((artefact, path, names))
    done: set[str] = set()
    for artefact, path, names in verified:
        for name in names:
            binary = spec.binaries[name]
            started = time.monotonic()
            made = download.extract(artefact, path, name, work / "out")
            reported = _check_version(name, binary, made)
            _install(
                directory,
                name,
                made,
                entries,
                Entry(
                    version=binary.version,
                    sha256=file_sha256(made),
                    size=made.stat().st_size,
                    how="downloaded",
                    at=_now(),
                    versionOutput=reported,
                    source=artefact.url,
                    verified=f"{artefact.algorithm} {artefact.digest}",
                    seconds=round(time.monotonic() - started, 1),
                ),
            )
            say(f"{name} {binary.version}: downloaded, {reported}")
            done.add(name)
    return [name for name in todo if name not in done]


def build_rest(
    spec: ControlPlaneSpec,
    names: list[BinaryName],
    directory: Path,
    work: Path,
    entries: dict[str, Entry],
    say: Say,
) -> None:
    """Build `names` with the user's Go, one wrapper module per (module, version)."""
    if not names:
        return
    go = gobuild.find_go(names)
    wrappers: dict[tuple[str, str], Path] = {}
    for name in names:
        binary = spec.binaries[name]
        wrapper = binary.build.wrapper
        if wrapper is not None and (wrapper.module, binary.version) not in wrappers:
            packages = [
                spec.binaries[n].build.package
                for n in names
                if spec.binaries[n].build.wrapper == wrapper
                and spec.binaries[n].version == binary.version
            ]
            say(f"preparing a wrapper module for {wrapper.module} {binary.version} … ", end="")
            started = time.monotonic()
            try:
                mod = gobuild.prepare_wrapper(go, wrapper, binary.version, packages, work)
            except PlatformError:
                say("failed")
                raise
            wrappers[(wrapper.module, binary.version)] = mod
            say(f"done in {_secs(started)} s")
        say(f"building {name} {binary.version} … ", end="")
        started = time.monotonic()
        try:
            if wrapper is None:
                made = gobuild.install(go, name, binary, work, work / "out")
            else:
                mod = wrappers[(wrapper.module, binary.version)]
                made = gobuild.build_in_wrapper(go, name, binary, mod, work / "out")
            seconds = time.monotonic() - started
            reported = _check_version(name, binary, made)
        except PlatformError:
            say("failed")
            raise
        _install(
            directory,
            name,
            made,
            entries,
            Entry(
                version=binary.version,
                sha256=file_sha256(made),
                size=made.stat().st_size,
                how="built",
                at=_now(),
                versionOutput=reported,
                source=f"{binary.build.package}@{binary.version}",
                go=gobuild.built_with(go, made),
                seconds=round(seconds, 1),
            ),
        )
        say(f"done in {round(seconds)} s: {reported}")


def _check_version(name: str, binary: Binary, path: Path) -> str:
    """The line of `path --version` that shows the pinned version; PlatformError otherwise."""
    try:
        done = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=60, check=False
        )
        output = done.stdout + done.stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        output = str(exc)
    for line in output.splitlines():
        if binary.versionOutput in line:
            return line.strip()
    first = output.strip().splitlines()[0] if output.strip() else "nothing"
    raise PlatformError(
        f"{name} {binary.version}: `{name} --version` printed {first!r}, "
        f"expected {binary.versionOutput!r}; not installed"
    )


def _install(
    directory: Path, name: str, made: Path, entries: dict[str, Entry], entry: Entry
) -> None:
    """Rename the checked binary into place, then record it (a crash in between leaves a
    binary with no entry, which the next run obtains again)."""
    os.replace(made, directory / "bin" / name)
    entries[name] = entry
    write_manifest(directory, entries)


def _secs(started: float) -> int:
    return round(time.monotonic() - started)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
