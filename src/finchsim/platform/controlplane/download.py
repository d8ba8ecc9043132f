"""Fetching official artefacts and checking them against the checksums kept in the repo.

Nothing from an artefact is used before its whole file matched the published checksum."""

from __future__ import annotations

import hashlib
import shutil
import stat
import tarfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

from finchsim.errors import PlatformError
from finchsim.platform.controlplane.spec import Download

PROBE_TIMEOUT = 3.0  # "the official download host answers quickly"
READ_TIMEOUT = 60.0
CHUNK = 1 << 20


class Unreachable(Exception):
    """The artefact could not be fetched (network, HTTP error): a reason to build instead."""


def answers(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether the host serving `url` answers an HTTP request within `timeout` seconds, name
    lookup included (which urllib's own timeout does not bound, hence the thread)."""
    answered: list[bool] = []

    def probe() -> None:
        request = urllib.request.Request(url, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                answered.append(True)
        except urllib.error.HTTPError:
            answered.append(True)  # it answered, if only to say no
        except (urllib.error.URLError, OSError, TimeoutError):
            answered.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answered and answered[0])


def fetch_verified(download: Download, into: Path) -> Path:
    """Download the artefact into `into`, hashing as it streams; the file if its checksum is
    the published one. A mismatch is a PlatformError and the file is deleted."""
    into.mkdir(parents=True, exist_ok=True)
    target = into / download.filename
    digest = hashlib.new(download.algorithm)
    try:
        with (
            urllib.request.urlopen(download.url, timeout=READ_TIMEOUT) as response,
            target.open("wb") as sink,
        ):
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                sink.write(chunk)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        target.unlink(missing_ok=True)
        raise Unreachable(f"{download.url}: {getattr(exc, 'reason', exc)}") from exc
    actual = digest.hexdigest()
    if actual != download.digest:
        target.unlink(missing_ok=True)
        raise PlatformError(
            f"checksum mismatch for {download.filename} ({download.url}): "
            f"expected {download.algorithm} {download.digest}, got {actual}; nothing installed"
        )
    return target


def extract(download: Download, artefact: Path, name: str, out: Path) -> Path:
    """Write binary `name` from a verified artefact to `out/name`, executable."""
    out.mkdir(parents=True, exist_ok=True)
    target = out / name
    member = download.binaries[name]  # type: ignore[index]
    if member is None:
        shutil.copyfile(artefact, target)
    else:
        with tarfile.open(artefact, "r:*") as archive:
            try:
                info = archive.getmember(member)
            except KeyError:
                raise PlatformError(f"{download.filename} has no {member}") from None
            source = archive.extractfile(info)
            if source is None:
                raise PlatformError(f"{download.filename}: {member} is not a file")
            with source, target.open("wb") as sink:
                shutil.copyfileobj(source, sink, CHUNK)
    target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return target
