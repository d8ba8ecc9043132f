"""The package's dependency directions (see the README's layout and docs/style):

- nothing under src/ imports locust, gevent or anything from loadtests/ (gevent patches the
  process it is imported in);
- analysis and the pure models import neither the platforms, the scenario runner nor the CLI;
- only the CLI and the platform registry may import a platform implementation
  (`finchsim.platform.local`, `.kubernetes`, `.providers`, `.kubelet`); an implementation may
  import its own package, a provider the Kubernetes platform it provides for and finch's
  kubelet, and the kubelet the local launch code and the kubernetes client;
- only the CLI imports the CLI.

`violations` is the rule; the self-tests feed it modules that break each rule on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

SRC = REPO / "src" / "finchsim"
MODULES = sorted(SRC.rglob("*.py"))
IMPLEMENTATIONS = (
    "finchsim.platform.local",
    "finchsim.platform.kubernetes",
    "finchsim.platform.providers",
    "finchsim.platform.kubelet",
)
# Who may import which implementation, besides the CLI and the registry.
ALLOWED_INSIDE = {
    "finchsim.platform.local": ("platform", "local"),
    "finchsim.platform.kubernetes": ("platform", "kubernetes"),
    "finchsim.platform.providers": ("platform", "providers"),
    "finchsim.platform.kubelet": ("platform", "kubelet"),
}
# The local provider runs its pods (finch's kubelet) and its edge with the local machinery
# (processes, nginx).
PROVIDERS_MAY_USE = (
    "finchsim.platform.kubernetes",
    "finchsim.platform.local",
    "finchsim.platform.kubelet",
)
KUBELET_MAY_USE = ("finchsim.platform.local", "finchsim.platform.kubernetes")
# A platform's settings model is an input model (like finchsim.inputs): validate reads it.
INPUT_MODELS = ("finchsim.platform.local.settings", "finchsim.platform.providers.kwok_settings")


def imported(source: str, filename: str = "<test>") -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            # `from finchsim.platform import local` imports the package finchsim.platform.local
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(rel: tuple[str, ...], names: set[str]) -> list[str]:
    """The imports of the module at `rel` (its path parts under src/finchsim) that break a
    rule, each with the rule it breaks."""
    bad: list[str] = []
    reported: list[str] = []
    for name in sorted(names):
        if any(_under(name, r) for r in reported):
            continue  # `from a.b import c` also yields a.b.c: one line per import
        before = len(bad)
        if any(_under(name, f) for f in ("locust", "gevent", "loadtests")):
            bad.append(f"{name}: nothing in src/ may import Locust or loadtests/")
        if rel[0] in ("analysis", "models") and any(
            _under(name, f) for f in ("finchsim.platform", "finchsim.scenarios", "finchsim.cli")
        ):
            bad.append(f"{name}: {rel[0]} may not import a platform, the runner or the CLI")
        if rel != ("cli.py",) and _under(name, "finchsim.cli"):
            bad.append(f"{name}: only the CLI imports the CLI")
        for impl in IMPLEMENTATIONS:
            if not _under(name, impl) or any(_under(name, m) for m in INPUT_MODELS):
                continue
            own = rel[: len(ALLOWED_INSIDE[impl])] == ALLOWED_INSIDE[impl]
            provider_use = rel[:2] == ("platform", "providers") and impl in PROVIDERS_MAY_USE
            kubelet_use = rel[:2] == ("platform", "kubelet") and impl in KUBELET_MAY_USE
            if (
                rel not in (("cli.py",), ("platform", "registry.py"))
                and not own
                and not provider_use
                and not kubelet_use
            ):
                bad.append(f"{name}: only the CLI and the registry may import {impl}")
        if len(bad) > before:
            reported.append(name)
    return bad


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_import_directions(path: Path) -> None:
    rel = path.relative_to(SRC).parts
    bad = violations(rel, imported(path.read_text(), str(path)))
    assert not bad, f"{path.relative_to(REPO)}:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    ("rel", "source", "rule"),
    [
        (("load", "x.py"), "import locust\n", "nothing in src/ may import Locust"),
        (("simulate.py",), "from loadtests import finch_locustfile\n", "may import Locust"),
        (
            ("analysis", "x.py"),
            "from finchsim.platform.base import Platform\n",
            "analysis may not import a platform",
        ),
        (
            ("models", "x.py"),
            "from finchsim.platform import topology\n",
            "models may not import a platform",
        ),
        (
            ("simulate.py",),
            "from finchsim.platform.local.platform import LocalPlatform\n",
            "only the CLI and the registry may import finchsim.platform.local",
        ),
        (
            ("running.py",),
            "from finchsim.platform import kubernetes\n",
            "only the CLI and the registry may import finchsim.platform.kubernetes",
        ),
        (
            ("platform", "local", "x.py"),
            "import finchsim.platform.providers.kwok\n",
            "only the CLI and the registry may import finchsim.platform.providers",
        ),
        (
            ("platform", "kubelet", "x.py"),
            "from finchsim.platform.providers import local\n",
            "only the CLI and the registry may import finchsim.platform.providers",
        ),
        (
            ("platform", "local", "x.py"),
            "from finchsim.platform.kubelet import Kubelet\n",
            "only the CLI and the registry may import finchsim.platform.kubelet",
        ),
        (("whatif.py",), "from finchsim.cli import main\n", "only the CLI imports the CLI"),
    ],
)
def test_the_rules_catch_a_module_that_breaks_them(
    rel: tuple[str, ...], source: str, rule: str
) -> None:
    found = violations(rel, imported(source))
    assert any(rule in v for v in found), found


@pytest.mark.parametrize(
    ("rel", "source"),
    [
        (("cli.py",), "from finchsim.platform.local.live import run_up\n"),
        (
            ("platform", "registry.py"),
            "from finchsim.platform.providers.kwok import KwokProvider\n",
        ),
        (("platform", "providers", "kwok.py"), "from finchsim.platform.kubernetes import apply\n"),
        (("platform", "local", "pods.py"), "from finchsim.platform.local.runtimes import x\n"),
        (("models", "load.py"), "from finchsim.inputs import Document\n"),
        (("validate.py",), "from finchsim.platform.local.settings import LocalPlatformSettings\n"),
    ],
)
def test_the_rules_allow_what_the_layout_allows(rel: tuple[str, ...], source: str) -> None:
    assert violations(rel, imported(source)) == []
