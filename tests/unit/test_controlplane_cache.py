"""The control-plane binary cache, end to end, with a real HTTP server on 127.0.0.1 standing in
for the official download host: checksums refused, a warm cache, a tampered binary.

The "binaries" are small shell scripts that answer `--version`; their checksums are computed
here from the files this test serves (test data, not upstream sums)."""

from __future__ import annotations

import hashlib
import io
import os
import shlex
import socket
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from finchsim.errors import CommandError, InputError, PlatformError
from finchsim.platform.controlplane import (
    cache_root,
    controlplane_binaries,
    obtain_controlplane,
)
from finchsim.platform.controlplane import download as dl
from finchsim.platform.controlplane.binaries import machine_arch
from finchsim.platform.controlplane.gobuild import find_go
from finchsim.platform.controlplane.spec import BINARY_NAMES
from finchsim.project import Project
from tests.conftest import REPO

ARCH = machine_arch()
TARBALL = "bins.tar.gz"


@dataclass
class Served:
    url: str
    root: Path
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_address[1]}", root, requests)
    finally:
        server.shutdown()
        server.server_close()


def publish(served: Served, reports: dict[str, str] | None = None) -> str:
    """Serve a tarball of one script per binary; its sha256."""
    reports = reports or {}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in BINARY_NAMES:
            data = f"#!/bin/sh\necho '{reports.get(name, f'fake {name} v1.2.3')}'\n".encode()
            info = tarfile.TarInfo(f"release/bin/{name}")
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    (served.root / TARBALL).write_bytes(buffer.getvalue())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def spec_yaml(url: str, sha256: str) -> str:
    binaries = "\n".join(
        f"  {n}: {{version: v1.2.3, versionOutput: fake {n} v1.2.3, "
        f"build: {{package: example.invalid/{n}}}}}"
        for n in BINARY_NAMES
    )
    members = "\n".join(f"      {n}: release/bin/{n}" for n in BINARY_NAMES)
    return (
        f"apiVersion: finchsim/v1\nkind: ControlPlaneBinaries\nbinaries:\n{binaries}\n"
        f"downloads:\n  - url: {url}/{TARBALL}\n    arch: {ARCH}\n    sha256: '{sha256}'\n"
        f"    binaries:\n{members}\n"
    )


@pytest.fixture
def setup(
    served: Served, tmp_path: Path, scratch_project: Callable[[dict[str, str]], Project]
) -> Callable[[str], tuple[Project, dict[str, str]]]:
    def make(sha256: str) -> tuple[Project, dict[str, str]]:
        project = scratch_project(
            {"cluster/controlplane/binaries.yaml": spec_yaml(served.url, sha256)}
        )
        return project, {"FINCHSIM_CACHE": str(tmp_path / "cache")}

    return make


class Lines:
    """A `Say` that keeps what a terminal would show, line by line."""

    def __init__(self) -> None:
        self.text = ""

    def __call__(self, text: str, *, end: str = "\n") -> None:
        self.text += text + end

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def cli(project: Project, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "finchsim.cli", "--project", str(project.root), *args],
        capture_output=True,
        text=True,
        # hermetic: neither CI's FINCHSIM_BINARIES_FROM nor the user's cache leaks in
        env={**{k: v for k, v in os.environ.items() if not k.startswith("FINCHSIM_")}, **env},
        cwd=REPO,
        timeout=120,
        check=False,
    )


def downloaded(names: tuple[str, ...] = BINARY_NAMES) -> list[str]:
    return [f"downloading {TARBALL} … done in 0 s, sha256 verified"] + [
        f"{n} v1.2.3: downloaded, fake {n} v1.2.3" for n in names
    ]


def test_a_checksum_mismatch_is_refused_and_nothing_is_installed(
    served: Served, setup: Callable[[str], tuple[Project, dict[str, str]]]
) -> None:
    actual = publish(served)
    project, env = setup("0" * 64)
    say = Lines()
    with pytest.raises(PlatformError) as caught:
        obtain_controlplane(project, "download", say, env)
    assert str(caught.value) == (
        f"checksum mismatch for {TARBALL} ({served.url}/{TARBALL}): expected sha256 "
        f"{'0' * 64}, got {actual}; nothing installed"
    )
    assert say.lines == [f"downloading {TARBALL} … refused"]
    sets = list((Path(env["FINCHSIM_CACHE"]) / "controlplane").iterdir())
    assert len(sets) == 1
    assert sorted(p.name for p in sets[0].iterdir()) == [".lock", "bin"]  # no manifest, no tmp
    assert list((sets[0] / "bin").iterdir()) == []
    with pytest.raises(PlatformError, match=r"binaries missing from .*: etcd, kube-apiserver, "):
        controlplane_binaries(project, env)


def test_a_warm_cache_does_nothing_and_says_cached(
    served: Served, setup: Callable[[str], tuple[Project, dict[str, str]]]
) -> None:
    project, env = setup(publish(served))
    first = cli(project, env, "controlplane", "--from", "download")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == downloaded()
    assert served.requests == [f"/{TARBALL}"]

    again = cli(project, env, "controlplane", "--from", "download")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"{n} v1.2.3: cached" for n in BINARY_NAMES]
    assert served.requests == [f"/{TARBALL}"], "a warm cache downloads nothing"

    found = controlplane_binaries(project, env)
    assert found.kube_apiserver == found.directory / "bin" / "kube-apiserver"
    for name, path in found.by_name().items():
        version = subprocess.run([path, "--version"], capture_output=True, text=True)
        assert version.stdout == f"fake {name} v1.2.3\n"


def test_a_tampered_binary_is_obtained_again(
    served: Served, setup: Callable[[str], tuple[Project, dict[str, str]]]
) -> None:
    project, env = setup(publish(served))
    obtain_controlplane(project, "download", Lines(), env)
    kwok = controlplane_binaries(project, env).kwok
    original = kwok.read_bytes()
    kwok.write_bytes(original.replace(b"fake", b"evil"))  # same size: only the hash tells
    assert kwok.stat().st_size == len(original)

    say = Lines()
    obtain_controlplane(project, "download", say, env)
    cached = [f"{n} v1.2.3: cached" for n in BINARY_NAMES if n != "kwok"]
    assert say.lines == cached + downloaded(("kwok",))
    assert kwok.read_bytes() == original

    (kwok.parent / "metrics-server").unlink()
    with pytest.raises(PlatformError) as caught:
        controlplane_binaries(project, env)
    assert str(caught.value) == (
        f"control-plane binaries missing from {kwok.parent}: metrics-server; "
        "run `make controlplane`"
    )


def test_a_binary_reporting_another_version_is_not_installed(
    served: Served, setup: Callable[[str], tuple[Project, dict[str, str]]]
) -> None:
    project, env = setup(publish(served, {"kube-scheduler": "fake kube-scheduler v9.9.9"}))
    with pytest.raises(PlatformError) as caught:
        obtain_controlplane(project, "download", Lines(), env)
    assert str(caught.value) == (
        "kube-scheduler v1.2.3: `kube-scheduler --version` printed 'fake kube-scheduler "
        "v9.9.9', expected 'fake kube-scheduler v1.2.3'; not installed"
    )
    bin_dir = next((Path(env["FINCHSIM_CACHE"]) / "controlplane").iterdir()) / "bin"
    assert "kube-scheduler" not in {p.name for p in bin_dir.iterdir()}


def test_an_unknown_source_is_an_input_error(
    setup: Callable[[str], tuple[Project, dict[str, str]]],
) -> None:
    project, env = setup("0" * 64)
    done = cli(project, {**env, "FINCHSIM_BINARIES_FROM": "internet"}, "controlplane")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "FINCHSIM_BINARIES_FROM: expected one of auto, download, build, got 'internet'",
        "invalid input: 1 problem(s)",
    ]
    with pytest.raises(InputError):
        obtain_controlplane(project, "web", Lines(), env)


def test_the_download_host_probe(served: Served) -> None:
    publish(served)
    assert dl.answers(f"{served.url}/{TARBALL}")
    assert dl.answers(f"{served.url}/missing"), "a 404 is an answer"
    assert not dl.answers(f"http://127.0.0.1:{closed_port()}/x", timeout=1)


def test_download_mode_fails_when_the_host_does_not_answer(
    served: Served, setup: Callable[[str], tuple[Project, dict[str, str]]]
) -> None:
    project, env = setup("0" * 64)
    port = closed_port()
    (project.cluster / "controlplane" / "binaries.yaml").write_text(
        spec_yaml(f"http://127.0.0.1:{port}", "0" * 64)
    )
    say = Lines()
    with pytest.raises(PlatformError, match=rf"^cannot download http://127\.0\.0\.1:{port}/bins"):
        obtain_controlplane(project, "download", say, env)
    assert say.lines == [f"downloading {TARBALL} … failed"]


def test_auto_builds_when_the_host_does_not_answer_and_a_go_failure_is_pasteable(
    setup: Callable[[str], tuple[Project, dict[str, str]]],
) -> None:
    try:
        go = find_go(["a test"])
    except PlatformError as exc:
        pytest.skip(str(exc))
    project, env = setup("0" * 64)
    (project.cluster / "controlplane" / "binaries.yaml").write_text(
        spec_yaml(f"http://127.0.0.1:{closed_port()}", "0" * 64)
    )
    env = {**env, "GOPROXY": "off"}  # the build fails at once, without any network
    done = cli(project, env, "controlplane", "--from", "auto")
    assert done.returncode == 5, done.stderr
    assert done.stdout.splitlines() == [
        f"127.0.0.1 does not answer within 3 s: building {', '.join(BINARY_NAMES)} instead",
        "building etcd v1.2.3 … failed",
    ]
    error = done.stderr.splitlines()
    assert error[0].startswith("error: command failed (exit 1): env GOWORK=off CGO_ENABLED=0 ")
    assert error[0].endswith(" install -trimpath -ldflags '' example.invalid/etcd@v1.2.3")
    assert "module lookup disabled by GOPROXY=off" in done.stderr
    kept = (
        error[-1].removeprefix("(its directory ").removesuffix(" is kept; the next run removes it)")
    )
    assert Path(kept).is_dir() and f"-C {kept} " in error[0]
    assert go.path in error[0]
    cli(project, env, "controlplane", "--from", "auto")
    assert not Path(kept).exists(), "the next run removes what a failed one kept"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"FINCHSIM_CACHE": "/c", "XDG_CACHE_HOME": "/x"}, "/c"),
        ({"XDG_CACHE_HOME": "/x"}, "/x/finchsim"),
        ({}, str(Path.home() / ".cache" / "finchsim")),
    ],
)
def test_the_cache_location(env: dict[str, str], expected: str) -> None:
    assert cache_root(env) == Path(expected)


def test_a_failing_go_command_carries_a_pasteable_command(tmp_path: Path) -> None:
    try:
        go = find_go(["a test"])
    except PlatformError as exc:
        pytest.skip(str(exc))
    with pytest.raises(CommandError) as caught:
        go.run(["build", "./nothing"], tmp_path, {"GOFLAGS": "-mod=mod"}, 60)
    command = str(caught.value).splitlines()[0].removeprefix("command failed (exit 1): ")
    assert command.startswith("env GOWORK=off CGO_ENABLED=0 ")
    assert f" GOFLAGS=-mod=mod {go.path} -C {tmp_path} build ./nothing" in command
    assert "go.mod file not found" in caught.value.output
    again = subprocess.run(shlex.split(command), capture_output=True, text=True)
    assert again.returncode == caught.value.returncode
    assert "go.mod file not found" in again.stderr
