"""Pure-Python CPU work of a given duration, the stand-in for Finch's business logic."""

from __future__ import annotations

import hashlib
import time


def burn(ms: int, seed: bytes = b"finch") -> tuple[float, str]:
    """Hash in a loop until this thread has used `ms` milliseconds of CPU.

    Thread CPU time, not wall time: under CPU throttling or gthread contention the request
    takes longer, as real work would. 32-byte inputs keep the GIL held (hashlib only releases
    it above 2 KiB), like Python code. Returns (CPU ms used, digest)."""
    start = time.thread_time()
    deadline = start + ms / 1000.0
    digest = hashlib.sha256(seed).digest()
    while time.thread_time() < deadline:
        for _ in range(256):
            digest = hashlib.sha256(digest).digest()
    return (time.thread_time() - start) * 1000.0, digest.hex()
