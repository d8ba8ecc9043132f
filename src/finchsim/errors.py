"""The one exception tree of finchsim. Library code raises these; only the CLI exits.

FinchsimError                 unexpected failure            exit 1
├── InputError                invalid input file/overlay    exit 2
├── TargetMissed              a target/SLO was not met      exit 3
├── SteadyStateDeviated       a drill's steady state broke  exit 4
└── PlatformError             the platform failed           exit 5
    └── CommandError          a subprocess failed (carries the pasteable command)
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass


class FinchsimError(Exception):
    """Root of every error finchsim raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input: where it is and what was expected."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}"


class InputError(FinchsimError):
    """One or more input files are invalid; every problem is listed, not just the first."""

    exit_code = 2

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class TargetMissed(FinchsimError):
    exit_code = 3


class SteadyStateDeviated(FinchsimError):
    exit_code = 4


class PlatformError(FinchsimError):
    exit_code = 5


class CommandError(PlatformError):
    """A subprocess failed; the message can be pasted into a shell to reproduce it."""

    def __init__(self, argv: Sequence[str], returncode: int, output: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        super().__init__(
            f"command failed (exit {returncode}): {shlex.join(self.argv)}\n{output.rstrip()}"
        )
