"""A child that dies with the process that started it, even when that one is SIGKILLed.

`die_with_parent` runs in the child between fork and exec (Popen's `preexec_fn`): prctl(2)
PR_SET_PDEATHSIG, then a check that the parent did not die before it took effect. Caveat from
prctl(2): the "parent" is the thread that forked, so fork from a thread that lives as long as
the child should. libc is loaded here, before any fork: dlopen in a child is unsafe."""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


def die_with_parent(parent_pid: int, death_signal: int = signal.SIGKILL) -> None:
    if _LIBC.prctl(_PR_SET_PDEATHSIG, death_signal, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(126)
