"""The package's dependency directions (see the README's layout and docs/style):

- nothing under src/ imports locust or anything from loadtests/ (gevent patches the process);
- analysis imports neither the platform nor the scenario runner;
- only the CLI imports the CLI.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

SRC = REPO / "src" / "finchsim"
MODULES = sorted(SRC.rglob("*.py"))


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_import_directions(path: Path) -> None:
    names = imported(path)
    rel = path.relative_to(SRC).parts
    forbidden = {"locust", "gevent", "loadtests"}
    if rel[0] == "analysis":
        forbidden |= {"finchsim.platform", "finchsim.scenarios", "finchsim.cli"}
    if rel[0] != "cli.py":
        forbidden.add("finchsim.cli")
    bad = sorted(n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden))
    assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_the_rules_can_catch_a_violation(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import locust\nfrom finchsim.platform import tools\n")
    assert {"locust", "finchsim.platform"} <= imported(module)
