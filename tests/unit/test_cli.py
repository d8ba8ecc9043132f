"""The CLI through its real entry point: help texts, user-facing errors and exit codes."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from finchsim import errors
from finchsim.cli import COMMANDS, EXIT_INTERRUPTED
from finchsim.project import Project
from tests.conftest import REPO, run_cli


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command: str) -> None:
    done = run_cli(command, "--help")
    assert done.returncode == 0, done.stderr
    assert f"usage: finchsim {command}" in done.stdout
    assert COMMANDS[command][1] in done.stdout


def test_top_level_help_lists_commands_and_exit_codes() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    for command in COMMANDS:
        assert command in done.stdout
    assert "2 invalid input" in done.stdout


def test_unknown_command_is_a_usage_error() -> None:
    done = run_cli("simulatee")
    assert done.returncode == 2
    assert "invalid choice: 'simulatee'" in done.stderr


def test_invalid_input_exits_2_listing_every_problem(
    scratch_project: Callable[[dict[str, str]], Project],
) -> None:
    proj = scratch_project(
        {
            "analysis/targets.yaml": """\
            apiVersion: finchsim/v1
            kind: Targets
            recovery: {rto: 30 minutes, rpo: 1h}
            ingress: {rateLimitPerIpPerMinute: 100}
            """,
            "scenarios/drill.yaml": "apiVersion: finchsim/v1\nkind: Scenaro\n",
        }
    )
    done = run_cli("--project", str(proj.root), "validate")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "scenarios/drill.yaml: kind: expected one of: ControlPlaneBinaries, LoadProfile, "
        "LocalPlatform, Targets; got 'Scenaro'",
        "analysis/targets.yaml: recovery.rto: Value error, expected a duration like 30s, 30m, "
        "1h or 7d, got '30 minutes'",
        "invalid input: 2 problem(s)",
    ]
    assert "Traceback" not in done.stderr


def test_exit_code_table_in_readme_matches_the_code() -> None:
    """The README's table is the contract; it must say what the code does."""
    readme = (REPO / "README.md").read_text()
    table = dict(re.findall(r"^\| (\d+) \| `?(\w+)`? \|", readme, flags=re.MULTILINE))
    expected = {
        "0": "ok",
        "1": errors.FinchsimError.__name__,
        "2": errors.InputError.__name__,
        "3": errors.TargetMissed.__name__,
        "4": errors.SteadyStateDeviated.__name__,
        "5": errors.PlatformError.__name__,
        str(EXIT_INTERRUPTED): "interrupted",
    }
    assert table == expected
    for code, name in expected.items():
        cls = getattr(errors, name, None)
        if cls is not None:
            assert str(cls.exit_code) == code
