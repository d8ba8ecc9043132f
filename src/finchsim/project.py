"""Where a finch-sim project's input folders are. Passed explicitly; never a global."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from finchsim.errors import InputError, Problem

# What makes a directory a checkout: the topology with its overlays, the load tests and the
# analysis inputs. `scenarios/` is optional (no drills exist yet); validate reads it if present.
MARKERS = ("cluster/overlays", "loadtests", "analysis")


@dataclass(frozen=True)
class Project:
    """A checkout of finch-sim: the input folders under one root."""

    root: Path
    # How it was found: "--project", "cwd", or "installed" (the cwd is outside any checkout).
    found_by: str = field(default="--project", compare=False)

    @property
    def cluster(self) -> Path:
        return self.root / "cluster"

    @property
    def scenarios(self) -> Path:
        return self.root / "scenarios"

    @property
    def loadtests(self) -> Path:
        return self.root / "loadtests"

    @property
    def analysis(self) -> Path:
        return self.root / "analysis"

    def rel(self, path: Path) -> str:
        """A path as the user should read it: relative to the project root when inside it."""
        try:
            return str(path.resolve().relative_to(self.root.resolve()))
        except ValueError:
            return str(path)

    @classmethod
    def locate(cls, explicit: str | os.PathLike[str] | None = None) -> Project:
        """The checkout at `explicit` (an InputError naming what is missing if it is not one),
        else the nearest checkout at or above the working directory, else the checkout this
        package was installed from (`found_by == "installed"`, for the CLI to say so), else an
        InputError: a command never runs on inputs the user did not mean."""
        if explicit is not None:
            root = Path(explicit).expanduser().resolve()
            missing = missing_markers(root)
            if missing:
                raise InputError([Problem(str(explicit), "", _not_a_checkout(root, missing))])
            return cls(root, "--project")
        here = Path.cwd().resolve()
        for candidate in (here, *here.parents):
            if not missing_markers(candidate):
                return cls(candidate, "cwd")
        installed = Path(__file__).resolve().parents[2]
        if not missing_markers(installed):
            return cls(installed, "installed")
        raise InputError(
            [
                Problem(
                    str(here),
                    "",
                    "not inside a finch-sim checkout (none of it or its parents holds "
                    f"{', '.join(f'{m}/' for m in MARKERS)}): run finchsim in one, or pass "
                    "--project DIR",
                )
            ]
        )


def missing_markers(root: Path) -> list[str]:
    """The folders that make a checkout and are not under `root` (empty: it is one)."""
    return [marker for marker in MARKERS if not (root / marker).is_dir()]


def _not_a_checkout(root: Path, missing: list[str]) -> str:
    if not root.is_dir():
        return "not a finch-sim checkout: no such directory"
    return "not a finch-sim checkout: no " + ", ".join(f"{m}/" for m in missing)
