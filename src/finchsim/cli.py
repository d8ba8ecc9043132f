"""The `finchsim` command. The only place that turns errors into exit codes.

Exit codes (documented in the README, tested in tests/unit/test_cli.py):
    0 ok · 1 unexpected error · 2 invalid input · 3 target missed ·
    4 steady state deviated · 5 platform failure · 130 interrupted
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from finchsim import __version__
from finchsim.errors import FinchsimError, InputError, PlatformError, Problem
from finchsim.platform.controlplane.binaries import SOURCE_ENV, SOURCES
from finchsim.platform.registry import PLATFORMS, PlatformOptions
from finchsim.platform.registry import create as create_platform
from finchsim.platform.secrets import ensure_secrets
from finchsim.project import Project
from finchsim.running import EventLog
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
        report = validate_project(
            project, progress=lambda msg: status.update(msg), server=not args.no_server
        )
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


def _platform_options(args: argparse.Namespace, events: list[str]) -> PlatformOptions:
    return PlatformOptions(
        _project(args),
        args.overlay,
        log=events.append,
        kubeconfig=Path(args.kubeconfig) if args.kubeconfig else None,
        context=args.context,
        adopt=args.adopt,
    )


def cmd_up(args: argparse.Namespace) -> int:
    project = _project(args)
    check_run_inputs(project, args.overlay, platform=args.platform)
    from finchsim.running import run_platform

    events = EventLog()
    platform = create_platform(args.platform, _platform_options(args, events))
    return run_platform(platform, out, err, events, hold=True)


def cmd_down(args: argparse.Namespace) -> int:
    from finchsim.platform.registry import down

    out.print(down(_project(args)))
    return 0


def cmd_kubeconfig(args: argparse.Namespace) -> int:
    from finchsim.platform import runstate

    state = runstate.read_state(_project(args))
    if state is None or not runstate.holder_alive(state):
        raise PlatformError("nothing is up: start it with `finchsim up`")
    if args.platform and state.get("platform") != args.platform:
        raise PlatformError(
            f"the running topology is on the {state.get('platform')} platform, not {args.platform}"
        )
    if not state.get("kubeconfig"):
        raise PlatformError(f"the {state.get('platform')} platform has no kubeconfig")
    out.print(state["kubeconfig"], markup=False)
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    if args.platform == "kwok":
        return _simulate_cluster(args)
    if args.nodes is not None or args.traffic != 1.0:
        raise InputError(
            [
                Problem(
                    "--nodes/--traffic",
                    "",
                    "what-ifs need --platform kwok; elsewhere the nodes are the platform's "
                    "own (cluster/local/platform.yaml) and the traffic is the load profile's",
                )
            ]
        )
    from finchsim.simulate import run_simulate

    project = _project(args)
    check_run_inputs(project, args.overlay, profile=args.profile, platform=args.platform)
    events = EventLog()
    platform = create_platform(args.platform, _platform_options(args, events))
    return run_simulate(platform, project, args.profile, out, err, events)


def _simulate_cluster(args: argparse.Namespace) -> int:
    from finchsim.whatif import run_whatif

    check_run_inputs(_project(args), args.overlay, profile=args.profile, platform=args.platform)
    events = EventLog()
    code, _result = run_whatif(
        _platform_options(args, events),
        args.platform,
        args.profile,
        args.nodes,
        args.traffic,
        out,
        err,
        events,
    )
    return code


def cmd_calibrate(args: argparse.Namespace) -> int:
    from finchsim.calibrate import run_calibrate

    project = _project(args)
    check_run_inputs(project, args.overlay, profile=args.profile)
    events = EventLog()
    platform = create_platform("local", PlatformOptions(project, args.overlay, log=events.append))
    return run_calibrate(platform, project, args.overlay, args.profile, out, err, events)


def cmd_controlplane(args: argparse.Namespace) -> int:
    from finchsim.platform.controlplane import obtain_controlplane

    def say(text: str, *, end: str = "\n") -> None:
        out.print(text, end=end, markup=False)

    obtain_controlplane(_project(args), args.source, say)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import signal

    def interrupt(_sig: int, _frame: object) -> None:  # `finchsim down`, or a CI timeout
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    project = _project(args)
    parts = args.only or list(BENCH_PARTS)
    if "local" in parts:
        from finchsim.benchmarks.local import bench_local

        check_run_inputs(project, args.overlay)
        bench_local(project, args.overlay, out)
    if set(parts) - {"local"}:
        from finchsim.benchmarks.kwok import run_kwok_bench

        run_kwok_bench(project, parts, out, err)
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "validate": (cmd_validate, "check every input file and overlay offline"),
    "secrets": (cmd_secrets, "generate the git-ignored secrets the manifests need (idempotent)"),
    "simulate": (cmd_simulate, "bring the topology up, drive load, report, tear down"),
    "up": (cmd_up, "bring the topology up locally and keep it running until Ctrl-C or `down`"),
    "down": (cmd_down, "stop a running topology and remove everything it left"),
    "kubeconfig": (cmd_kubeconfig, "print the kubeconfig path of the running cluster, for kubectl"),
    "calibrate": (
        cmd_calibrate,
        "measure the load model's per-request costs on the local platform",
    ),
    "bench": (cmd_bench, "measure start times (bare vs. whole topology) and stack memory"),
    "controlplane": (
        cmd_controlplane,
        "download or build the pinned control-plane binaries into the cache",
    ),
}
# local: bare starts vs. time to ready, memory and idle CPU on the real control plane with our
# kubelet; kwok-up: time to rolled out; fidelity: HPA model vs real HPA; scale: 100 nodes +
# 1000 pods; whatif: 100 nodes at 10x traffic.
BENCH_PARTS = ("local", "kwok-up", "scale", "fidelity", "whatif")
WITH_OVERLAY = ("simulate", "up", "bench", "calibrate")
WITH_PLATFORM = ("simulate", "up")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finchsim",
        description="Simulate the Finch Kubernetes topology locally and judge it against its "
        "targets.",
        epilog="exit codes: 0 ok, 1 unexpected error, 2 invalid input, 3 target missed, "
        "4 steady state deviated, 5 platform failure, 129/130/143 stopped by SIGHUP/SIGINT/SIGTERM",
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
        if name in WITH_PLATFORM:
            _platform_arguments(cmd)
        if name == "validate":
            cmd.add_argument(
                "--no-server",
                action="store_true",
                help="skip the server-side dry run on a throwaway kube-apiserver",
            )
        if name == "simulate":
            cmd.add_argument(
                "--profile",
                default="simulate",
                help="the load profile of loadtests/profiles (default: simulate)",
            )
            cmd.add_argument(
                "--nodes", type=int, help="--platform kwok: nodes in the first node pool"
            )
            cmd.add_argument(
                "--traffic",
                type=float,
                default=1.0,
                help="--platform kwok: multiply the profile's offered load (default: 1)",
            )
        if name == "bench":
            cmd.add_argument(
                "--only",
                action="append",
                choices=BENCH_PARTS,
                help="run only this part (repeatable; default: all of them)",
            )
        if name == "calibrate":
            cmd.add_argument(
                "--profile",
                default="simulate",
                help="the load profile of loadtests/profiles to measure under (default: simulate)",
            )
        if name == "kubeconfig":
            cmd.add_argument(
                "--platform",
                choices=sorted(PLATFORMS),
                help="refuse unless the running topology is on this platform",
            )
        if name == "controlplane":
            cmd.add_argument(
                "--from",
                dest="source",
                choices=SOURCES,
                default=os.environ.get(SOURCE_ENV) or "auto",
                help="download the official binaries (checked against the repo's checksums), "
                "build them from the Go module proxy, or auto: download when the download host "
                f"answers, else build (default: ${SOURCE_ENV}, else auto)",
            )
    return parser


def _platform_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--platform",
        default="local",
        choices=list(PLATFORMS),
        help="where the topology runs (default: local)",
    )
    cmd.add_argument(
        "--kubeconfig", help="--platform context: the kubeconfig file (default: ~/.kube/config)"
    )
    cmd.add_argument(
        "--context",
        help="--platform context: the context to use (default: the kubeconfig's current one)",
    )
    cmd.add_argument(
        "--adopt",
        action="store_true",
        help="--platform context: use namespaces that exist already (never deleted)",
    )


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
        # A file of our own (0600, O_EXCL): a fixed name in /tmp could be planted as a symlink.
        fd, name = tempfile.mkstemp(prefix="finchsim-crash-", suffix=".log")
        with os.fdopen(fd, "w") as log_file:
            log_file.write(traceback.format_exc())
        log = Path(name)
        err.print(f"unexpected error (a finchsim bug); traceback in {log}", markup=False)
        return FinchsimError.exit_code


if __name__ == "__main__":
    sys.exit(main())
