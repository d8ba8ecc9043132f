"""Whether a container's user can run the program its image maps to on this machine."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path


def reachable(program: str, ids: tuple[int, ...], depth: int = 0) -> bool:
    """Whether (uid, gid, *groups) can execute `program`, its `#!` interpreter and everything
    they resolve through (by the permission bits of each directory on the way and the file)."""
    path = shutil.which(program) or program
    uid, groups = ids[0], set(ids[1:])
    target = Path(os.path.realpath(path))
    for item in [*reversed(target.parents), target]:
        try:
            st = item.stat()
        except OSError:
            return False
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    with contextlib.suppress(OSError):
        with target.open("rb") as fh:
            head = fh.readline(256)
        if head.startswith(b"#!") and depth < 2:
            interpreter = head[2:].decode(errors="replace").split()
            return not interpreter or reachable(interpreter[0], ids, depth + 1)
    return True
