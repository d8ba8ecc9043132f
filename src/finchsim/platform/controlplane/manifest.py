"""The small JSON manifest beside the cached binaries: how each one was obtained.

A binary counts as present only if the manifest has an entry for it and the file still has
the sha256 recorded there; anything else is obtained again."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Entry:
    """One installed binary. `how` is "downloaded" (with the artefact and the checksum that
    was verified) or "built" (with the Go version and how long the build took)."""

    version: str
    sha256: str
    size: int
    how: str
    at: str
    versionOutput: str
    source: str  # the artefact URL, or the Go package@version
    verified: str = ""  # e.g. "sha512 65c7…" of the artefact, for a download
    go: str = ""  # e.g. go1.26.8, for a build
    seconds: float = 0.0


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(directory: Path) -> dict[str, Entry]:
    """The entries recorded in `directory`; none if the manifest is missing or unreadable."""
    try:
        data = json.loads((directory / MANIFEST).read_text())
        return {name: Entry(**fields) for name, fields in data["binaries"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def write_manifest(directory: Path, entries: dict[str, Entry]) -> None:
    """Replace the manifest atomically: a reader sees the old one or the new one."""
    data = {"binaries": {name: asdict(entry) for name, entry in sorted(entries.items())}}
    tmp = directory / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, directory / MANIFEST)


def intact(entry: Entry | None, path: Path, version: str, *, hashed: bool) -> bool:
    """Whether `path` is the binary `entry` recorded at `version`. Without `hashed`, only its
    size is compared (cheap, for callers that just need paths)."""
    if entry is None or entry.version != version or not path.is_file():
        return False
    if path.stat().st_size != entry.size:
        return False
    return not hashed or file_sha256(path) == entry.sha256
