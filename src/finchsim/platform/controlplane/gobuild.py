"""Building the pinned binaries from the Go module proxy with the user's Go.

Two recipes (chosen in cluster/controlplane/binaries.yaml): `go install package@version` into a
GOBIN of ours, or a generated wrapper module (see gomod.py) with `go get` then `go build`.
The user's module and build caches (`go env GOMODCACHE GOCACHE`) are used as they are, so a
second build is fast. Every go command runs as `env K=V ... go -C DIR ...`, so the command a
CommandError carries can be pasted into a shell as it is."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from finchsim.errors import CommandError, PlatformError
from finchsim.platform.controlplane.gomod import (
    parse_gomod,
    staging_replaces,
    wrapper_gomod,
)
from finchsim.platform.controlplane.spec import Binary, Wrapper, staging_version

MIN_GO = (1, 21)  # GOTOOLCHAIN: an older Go cannot fetch the toolchain the modules ask for
GET_TIMEOUT = 1800.0
BUILD_TIMEOUT = 3600.0
OUTPUT_TAIL = 40
WRAPPER_MODULE = "finchsim.local/{name}"
INSTALL_GO = (
    "install Go 1.21 or newer from https://go.dev/dl (Debian 12's golang-go is 1.19, too old) "
    "and run `make controlplane` again"
)


@dataclass(frozen=True)
class Go:
    """The user's go command and the environment our go commands add to theirs."""

    path: str
    version: str  # e.g. go1.26.8
    env: tuple[tuple[str, str], ...]

    def command(self, args: Sequence[str], cwd: Path, extra: dict[str, str]) -> list[str]:
        """`env K=V ... go -C cwd args...`: what runs is exactly what a user can paste."""
        pairs = [f"{k}={v}" for k, v in (*self.env, *sorted(extra.items()))]
        return ["env", *pairs, self.path, "-C", str(cwd), *args]

    def run(
        self,
        args: Sequence[str],
        cwd: Path,
        extra: dict[str, str],
        timeout: float,
        *,
        json_out: bool = False,
    ) -> str:
        """The command's output (only stdout with `json_out`, where go's progress lines on
        stderr would spoil the JSON); a failure is a CommandError with the output's tail."""
        argv = self.command(args, cwd, extra)
        try:
            done = subprocess.run(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE if json_out else subprocess.STDOUT,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise CommandError(argv, -1, f"timed out after {timeout:.0f} s") from exc
        if done.returncode != 0:
            lines = ((done.stderr or "") + done.stdout).splitlines()
            raise CommandError(argv, done.returncode, "\n".join(lines[-OUTPUT_TAIL:]))
        return done.stdout


def find_go(needed_for: Sequence[str]) -> Go:
    """The user's Go (PATH, else /usr/local/go/bin), checked to be new enough."""
    path = shutil.which("go") or next(
        (p for p in ("/usr/local/go/bin/go",) if os.access(p, os.X_OK)), None
    )
    what = ", ".join(needed_for)
    if path is None:
        raise PlatformError(f"go not found: building {what} needs Go; {INSTALL_GO}")
    probe = subprocess.run(
        [path, "env", "GOVERSION", "GOTOOLCHAIN"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = probe.stdout.split()
    match = re.match(r"go(\d+)\.(\d+)", lines[0]) if probe.returncode == 0 and lines else None
    if match is None or (int(match.group(1)), int(match.group(2))) < MIN_GO:
        found = lines[0] if lines else probe.stderr.strip() or "unknown"
        raise PlatformError(f"{path} is {found}: building {what} needs Go; {INSTALL_GO}")
    env = [("GOWORK", "off"), ("CGO_ENABLED", "0")]
    # GOTOOLCHAIN=local forbids fetching a newer toolchain; `auto` uses the local Go when it is
    # new enough and otherwise fetches the one a go.mod asks for from the module proxy.
    if len(lines) > 1 and lines[1] == "local":
        env.append(("GOTOOLCHAIN", "auto"))
    return Go(path, lines[0], tuple(env))


def _ldflags(binary: Binary) -> list[str]:
    return ["-trimpath", "-ldflags", " ".join(binary.build.ldflags)]


def install(go: Go, name: str, binary: Binary, work: Path, out: Path) -> Path:
    """`go install package@version` with GOBIN=out; the binary's path."""
    out.mkdir(parents=True, exist_ok=True)
    pkg = f"{binary.build.package}@{binary.version}"
    go.run(["install", *_ldflags(binary), pkg], work, {"GOBIN": str(out)}, BUILD_TIMEOUT)
    return out / binary.build.package.rsplit("/", 1)[-1]


def prepare_wrapper(
    go: Go, wrapper: Wrapper, version: str, packages: Sequence[str], work: Path
) -> Path:
    """Generate the wrapper module for `packages` (all of `wrapper.module`@`version`) in
    `work`, `go get` them, and return the module's directory."""
    mod = work / "wrapper"
    mod.mkdir(parents=True, exist_ok=True)
    godebug: list[str] = []
    replaces: list[str] = []
    go_directive = wrapper.goDirective or ""
    if wrapper.stagingReplaces:
        args = ["mod", "download", "-json", f"{wrapper.module}@{version}"]
        info = json.loads(go.run(args, work, {}, GET_TIMEOUT, json_out=True))
        upstream = parse_gomod(Path(info["GoMod"]).read_text())
        go_directive, godebug = upstream.go, upstream.godebug
        replaces = staging_replaces(upstream, staging_version(version))
    # finchsim.local/etcd for go.etcd.io/etcd/server/v3, finchsim.local/kubernetes for k8s.io/...
    parts = wrapper.module.split("/")
    label = re.sub(r"[^a-z0-9-]", "-", (parts[1] if len(parts) > 1 else parts[0]).lower())
    (mod / "go.mod").write_text(
        wrapper_gomod(
            WRAPPER_MODULE.format(name=label),
            go_directive,
            [(wrapper.module, version)],
            godebug,
            replaces,
        )
    )
    imports = "\n".join(f'\t_ "{package}"' for package in packages)
    (mod / "tools.go").write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n")
    pinned = [f"{package}@{version}" for package in packages]
    go.run(["get", *pinned], mod, {"GOFLAGS": "-mod=mod"}, GET_TIMEOUT)
    return mod


def build_in_wrapper(go: Go, name: str, binary: Binary, mod: Path, out: Path) -> Path:
    """`go build -o out/name package` inside a prepared wrapper module."""
    out.mkdir(parents=True, exist_ok=True)
    target = out / name
    args = ["build", *_ldflags(binary), "-o", str(target), binary.build.package]
    go.run(args, mod, {"GOFLAGS": "-mod=mod"}, BUILD_TIMEOUT)
    return target


def built_with(go: Go, binary: Path) -> str:
    """The Go version a binary was built with (`go version FILE`), e.g. go1.26.8."""
    words = go.run(["version", str(binary)], binary.parent, {}, 60).split()
    return words[-1] if words else "unknown"
