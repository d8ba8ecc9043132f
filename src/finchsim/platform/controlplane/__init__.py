"""Obtain, verify and locate the pinned control-plane binaries (see binaries.py)."""

from finchsim.platform.controlplane.binaries import (
    SOURCE_ENV,
    SOURCES,
    ControlPlaneBinaries,
    cache_root,
    controlplane_binaries,
    ensure_binaries,
    obtain_controlplane,
)
from finchsim.platform.controlplane.spec import ControlPlaneSpec, load_spec

__all__ = [
    "SOURCES",
    "SOURCE_ENV",
    "ControlPlaneBinaries",
    "ControlPlaneSpec",
    "cache_root",
    "controlplane_binaries",
    "ensure_binaries",
    "load_spec",
    "obtain_controlplane",
]
