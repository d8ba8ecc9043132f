"""The `finchsim` command. The only place that turns errors into exit codes.

Exit codes (documented in the README, tested in tests/unit/test_cli.py):
    0 ok · 1 unexpected error · 2 invalid input · 3 target missed ·
    4 steady state deviated · 5 platform failure · 130 interrupted
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from finchsim import __version__
from finchsim.errors import FinchsimError, InputError
from finchsim.platform.secrets import ensure_secrets
from finchsim.project import Project
from finchsim.validate import check_run_inputs, validate_project

EXIT_INTERRUPTED = 130

# soft_wrap: an error line must stay one line, whatever the terminal width.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _project(args: argparse.Namespace) -> Project:
    project = Project.locate(args.project)
    if project.found_by == "installed":
        err.print(
            f"note: {Path.cwd()} is not in a finch-sim checkout; using the one finchsim is "
            f"installed from: {project.root}",
            markup=False,
        )
    return project


def cmd_validate(args: argparse.Namespace) -> int:
    project = _project(args)
    with err.status("validating…") as status:
        report = validate_project(project, progress=lambda msg: status.update(msg))
    if report.problems:
        raise InputError(report.problems)
    for item in report.checked:
        out.print(f"[green]ok[/] {item}")
    out.print(f"valid: {len(report.checked)} checks, no problems")
    return 0


def cmd_secrets(args: argparse.Namespace) -> int:
    project = _project(args)
    done = ensure_secrets(project)
    for path, what in done.items():
        out.print(f"{what} {project.rel(path)}")
    if not done:
        out.print("secrets: all present, nothing generated")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from finchsim.platform.local.live import run_up  # heavy imports only for this command

    project = _project(args)
    check_run_inputs(project, args.overlay)
    return run_up(project, args.overlay, out, err, hold=True)


def cmd_down(args: argparse.Namespace) -> int:
    from finchsim.platform.local.platform import down_from_anywhere

    out.print(down_from_anywhere(_project(args)))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from finchsim.simulate import simulate

    return simulate(_project(args), args.overlay, out, err)


def cmd_bench(args: argparse.Namespace) -> int:
    import signal

    from finchsim.bench import bench

    def interrupt(_sig: int, _frame: object) -> None:  # `finchsim down`, or a CI timeout
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    bench(_project(args), args.overlay, out)
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "validate": (cmd_validate, "check every input file and overlay offline"),
    "secrets": (cmd_secrets, "generate the git-ignored secrets the manifests need (idempotent)"),
    "simulate": (cmd_simulate, "bring the topology up, drive load, report, tear down"),
    "up": (cmd_up, "bring the topology up locally and keep it running until Ctrl-C or `down`"),
    "down": (cmd_down, "stop a running topology and remove everything it left"),
    "bench": (cmd_bench, "measure start times (bare vs. whole topology) and stack memory"),
}
WITH_OVERLAY = ("simulate", "up", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finchsim",
        description="Simulate the Finch Kubernetes topology locally and judge it against its "
        "targets.",
        epilog="exit codes: 0 ok, 1 unexpected error, 2 invalid input, 3 target missed, "
        "4 steady state deviated, 5 platform failure, 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"finchsim {__version__}")
    parser.add_argument(
        "--project",
        metavar="DIR",
        help="the finch-sim checkout to use (default: found from the cwd)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (func, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.set_defaults(func=func)
        if name in WITH_OVERLAY:
            cmd.add_argument(
                "--overlay",
                default="production",
                help="which overlay of cluster/overlays to run (default: production)",
            )
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
    except Exception:  # a bug: say so in one line, keep the traceback for the report
        log = Path(tempfile.gettempdir()) / "finchsim-crash.log"
        log.write_text(traceback.format_exc())
        err.print(f"unexpected error (a finchsim bug); traceback in {log}", markup=False)
        return FinchsimError.exit_code


if __name__ == "__main__":
    sys.exit(main())
