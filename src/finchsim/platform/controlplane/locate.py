"""TEMPORARY (replaced by binaries.py at merge): the pinned binaries from a directory."""

from __future__ import annotations

import os
from pathlib import Path

from finchsim.errors import PlatformError

NAMES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kwokctl",
    "metrics-server",
)


def binary_paths() -> dict[str, Path]:
    root = Path(os.environ.get("FINCHSIM_CONTROLPLANE_BIN", "/tmp/cpbuild/bin"))
    paths = {name: root / name for name in NAMES}
    missing = [n for n, p in paths.items() if not p.is_file()]
    if missing:
        raise PlatformError(f"control-plane binaries missing: {missing}: run `make controlplane`")
    return paths
