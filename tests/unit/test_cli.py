"""The CLI through its real entry point: help texts, user-facing errors and exit codes."""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from finchsim import errors
from finchsim.cli import COMMANDS, EXIT_INTERRUPTED
from finchsim.project import Project
from finchsim.running import EXIT_FOR_SIGNAL
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
        "scenarios/drill.yaml: kind: expected one of: ControlPlaneBinaries, KwokCluster, "
        "LoadModel, LoadProfile, "
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
        str(EXIT_FOR_SIGNAL[signal.SIGHUP]): "hangup",
        str(EXIT_FOR_SIGNAL[signal.SIGTERM]): "terminated",
    }
    assert EXIT_FOR_SIGNAL[signal.SIGINT] == EXIT_INTERRUPTED
    assert table == expected
    for code, name in expected.items():
        cls = getattr(errors, name, None)
        if cls is not None:
            assert str(cls.exit_code) == code


def test_project_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    done = run_cli("--project", str(tmp_path / "nowhere"), "validate")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        f"{tmp_path / 'nowhere'}: not a finch-sim checkout: no such directory",
        "invalid input: 1 problem(s)",
    ]


def test_project_that_is_not_a_checkout_names_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "cluster").mkdir()
    (tmp_path / "loadtests").mkdir()
    done = run_cli("--project", str(tmp_path), "validate")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        f"{tmp_path}: not a finch-sim checkout: no cluster/overlays/, analysis/",
        "invalid input: 1 problem(s)",
    ]


def test_the_checkout_is_found_from_the_working_directory(
    scratch_project: Callable[[dict[str, str]], Project],
) -> None:
    """Inside another checkout (here a subfolder of one), that checkout is used, not the one
    finchsim is installed from; scenarios/ is not needed."""
    proj = scratch_project({"analysis/targets.yaml": "apiVersion: finchsim/v1\nkind: Targets\n"})
    (proj.root / "scenarios").rmdir()
    done = run_cli("validate", cwd=proj.root / "cluster" / "overlays")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "analysis/targets.yaml: recovery: Field required",
        "analysis/targets.yaml: ingress: Field required",
        "invalid input: 2 problem(s)",
    ]


def test_outside_any_checkout_the_installed_one_is_used_and_said(
    tmp_path: Path, project: Project
) -> None:
    done = run_cli("secrets", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"note: {tmp_path} is not in a finch-sim checkout; using the one finchsim is installed "
        f"from: {REPO}"
    ]
    assert done.stdout.splitlines() == ["secrets: all present, nothing generated"]


def test_kubeconfig_with_nothing_up_is_a_platform_error(project_copy: Project) -> None:
    done = run_cli("--project", str(project_copy.root), "kubeconfig")
    assert done.returncode == 5, done.stderr
    assert done.stderr.splitlines() == ["error: nothing is up: start it with `finchsim up`"]


def test_what_if_options_need_the_kwok_platform(project_copy: Project) -> None:
    done = run_cli("--project", str(project_copy.root), "simulate", "--nodes", "100")
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "--nodes/--traffic: what-ifs need --platform kwok; elsewhere the nodes are the "
        "platform's own (cluster/local/platform.yaml) and the traffic is the load profile's",
        "invalid input: 1 problem(s)",
    ]


def test_an_unknown_platform_is_a_usage_error() -> None:
    done = run_cli("up", "--platform", "kind")
    assert done.returncode == 2
    assert "invalid choice: 'kind' (choose from 'local', 'kwok', 'context')" in done.stderr


def test_a_kwok_what_if_checks_its_inputs_before_starting(project_copy: Project) -> None:
    done = run_cli(
        "--project", str(project_copy.root), "simulate", "--platform", "kwok", "--profile", "nope"
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[0].startswith(
        "loadtests/profiles/nope.yaml: no such load profile; have: baseline, hpa-cpu, "
    )
    assert not (project_copy.root / ".finchsim").exists()
