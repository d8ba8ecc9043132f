"""One local platform per machine: its loopback addresses are machine-wide.

Pods get 127.100.0.0/16, Services 127.96.0.0/16, nodes 127.0.10.0/24 (kubelet/addresses.py),
the same in every run, so a second local platform — another checkout's `finchsim up`, a test
run beside `make simulate` — would bind the first one's Service ports and serve its pods'
addresses twice. `.finchsim/current.json` refuses a second run of one checkout only; this lock
(flock(2), released by the kernel when its holder dies, even by SIGKILL) refuses the second of
any, naming the first. It lives in /run/lock where there is one (machine-wide, every user's),
else in the user's cache directory; opened without following a planted symlink."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from finchsim.errors import PlatformError

NAME = "finchsim-local-platform.lock"


def default_path() -> Path:
    run_lock = Path("/run/lock")
    if run_lock.is_dir() and os.access(run_lock, os.W_OK):
        return run_lock / NAME
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "finchsim"
    cache.mkdir(parents=True, exist_ok=True)
    return cache / NAME


class MachineLock:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()
        self.fd: int | None = None

    def acquire(self, holder: str) -> None:
        """Hold the lock, saying `holder` in it; PlatformError naming the holder if taken."""
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC  # no child inherits it
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise PlatformError(f"cannot open the local platform's lock {self.path}: {exc}") from (
                exc
            )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            who = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise PlatformError(
                f"another local platform runs on this machine ({who}); their loopback "
                "addresses would collide. Stop it first (`finchsim down` in its checkout)."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, 0)
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
