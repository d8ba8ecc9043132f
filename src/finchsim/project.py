"""Where a finch-sim project's input folders are. Passed explicitly; never a global."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

INPUT_FOLDERS = ("cluster", "scenarios", "loadtests", "analysis")


@dataclass(frozen=True)
class Project:
    """A checkout of finch-sim: the four input folders under one root."""

    root: Path

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
        """The project at `explicit`, else the nearest ancestor of the working directory that
        holds the input folders, else the checkout this package was installed from."""
        if explicit is not None:
            return cls(Path(explicit).resolve())
        here = Path.cwd().resolve()
        for candidate in (here, *here.parents):
            if all((candidate / name).is_dir() for name in INPUT_FOLDERS):
                return cls(candidate)
        return cls(Path(__file__).resolve().parents[2])
