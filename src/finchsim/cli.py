"""The `finchsim` command. The only place that turns errors into exit codes.

Exit codes (documented in the README, tested in tests/unit/test_cli.py):
    0 ok · 1 unexpected error · 2 invalid input · 3 target missed ·
    4 steady state deviated · 5 platform failure · 130 interrupted
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from rich.console import Console

from finchsim import __version__
from finchsim.errors import FinchsimError, InputError
from finchsim.platform.secrets import ensure_secrets
from finchsim.project import Project
from finchsim.validate import validate_project

EXIT_INTERRUPTED = 130

# soft_wrap: an error line must stay one line, whatever the terminal width.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def cmd_validate(args: argparse.Namespace) -> int:
    project = Project.locate(args.project)
    with err.status("validating…") as status:
        report = validate_project(project, progress=lambda msg: status.update(msg))
    if report.problems:
        raise InputError(report.problems)
    for item in report.checked:
        out.print(f"[green]ok[/] {item}")
    out.print(f"valid: {len(report.checked)} checks, no problems")
    return 0


def cmd_secrets(args: argparse.Namespace) -> int:
    project = Project.locate(args.project)
    created = ensure_secrets(project)
    for path in created:
        out.print(f"generated {project.rel(path)}")
    if not created:
        out.print("secrets: all present, nothing generated")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    err.print("finchsim simulate: the local platform is not built yet (issue 4); "
              "nothing was started. `finchsim validate` checks the topology offline.")
    return 1


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "validate": (cmd_validate, "check every input file and overlay offline"),
    "secrets": (cmd_secrets, "generate the git-ignored secrets the manifests need (idempotent)"),
    "simulate": (cmd_simulate, "bring the topology up, drive load, report, tear down"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finchsim",
        description="Simulate the Finch Kubernetes topology locally and judge it against its "
        "targets.",
        epilog="exit codes: 0 ok, 1 unexpected error, 2 invalid input, 3 target missed, "
        "4 steady state deviated, 5 platform failure, 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"finchsim {__version__}")
    parser.add_argument("--project", metavar="DIR",
                        help="the finch-sim checkout to use (default: found from the cwd)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (func, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except InputError as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False)
        err.print(f"invalid input: {len(exc.problems)} problem(s)")
        return exc.exit_code
    except FinchsimError as exc:
        err.print(f"error: {exc}", markup=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
