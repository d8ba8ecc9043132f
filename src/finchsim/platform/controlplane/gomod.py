"""go.mod files: reading the parts of an upstream go.mod a wrapper needs, writing the wrapper.

Kubernetes' own go.mod replaces its staging modules (k8s.io/api, k8s.io/client-go, ...) with
`./staging/src/...` directories, which exist only in its git tree, so `go install
k8s.io/kubernetes/cmd/...@v1.34.4` is refused. A wrapper module that requires
k8s.io/kubernetes and replaces each of those modules with its published version builds the
same code. The replace list is generated from that release's go.mod, never typed by hand."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_BLOCK = re.compile(r"^(\w+)\s*\(\s*$")
_COMMENT = re.compile(r"\s*//.*$")


@dataclass(frozen=True)
class GoMod:
    """What a wrapper copies from an upstream go.mod."""

    module: str
    go: str
    godebug: list[str] = field(default_factory=list)
    # (old path, new path) of every `replace` whose target is a directory of the module itself
    local_replaces: list[tuple[str, str]] = field(default_factory=list)


def parse_gomod(text: str) -> GoMod:
    """Parse the `module`, `go`, `godebug` and local `replace` directives of a go.mod.

    Handles both the single-line and the parenthesised block form of each directive."""
    module = go = ""
    godebug: list[str] = []
    replaces: list[tuple[str, str]] = []
    block: str | None = None
    for raw in text.splitlines():
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        if block is not None:
            if line == ")":
                block = None
                continue
            verb, rest = block, line
        elif match := _BLOCK.match(line):
            block = match.group(1)
            continue
        else:
            verb, _, rest = line.partition(" ")
            rest = rest.strip()
        if verb == "module":
            module = rest.strip('"')
        elif verb == "go":
            go = rest
        elif verb == "godebug":
            godebug.append(rest)
        elif verb == "replace":
            old, _, new = rest.partition("=>")
            target = new.split()
            # A local replacement is a path, and a path has no version after it.
            if len(target) == 1 and target[0].startswith(("./", "../")):
                replaces.append((old.split()[0], target[0]))
    if not module or not go:
        raise ValueError("not a go.mod: no module or go directive")
    return GoMod(module, go, godebug, replaces)


def staging_replaces(upstream: GoMod, version: str) -> list[str]:
    """`replace m => m <version>` for every module the upstream go.mod replaces with
    `./staging/...`, in the upstream order."""
    return [
        f"{old} => {old} {version}"
        for old, new in upstream.local_replaces
        if new.startswith("./staging/")
    ]


def wrapper_gomod(
    module: str,
    go: str,
    requires: list[tuple[str, str]],
    godebug: list[str] | None = None,
    replaces: list[str] | None = None,
) -> str:
    """The text of a wrapper module's go.mod."""
    lines = [f"module {module}", "", f"go {go}", ""]
    if godebug:
        lines += [f"godebug {entry}" for entry in godebug] + [""]
    lines += ["require ("] + [f"\t{path} {version}" for path, version in requires] + [")"]
    if replaces:
        lines += ["", "replace ("] + [f"\t{entry}" for entry in replaces] + [")"]
    return "\n".join(lines) + "\n"
