"""The data a run starts from: synthetic Finch data, made by the backend's own command."""

from __future__ import annotations

from collections.abc import Callable

from finchsim.platform.base import Platform

BACKEND = "finch-backend"
DATA_SIZE = "20MB"  # enough rows for real queries; seeds in about a second
SEED = ["python", "manage.py", "generate_data", "--size", DATA_SIZE, "--seed", "42"]


def seed(platform: Platform, say: Callable[[str], None]) -> None:
    """Deterministic data (seed 42), through `kubectl exec` into a backend pod (Needs EXEC)."""
    namespace = next(c.namespace for c in platform.components() if c.name == BACKEND)
    say(f"seeding {DATA_SIZE} of synthetic Finch data…")
    platform.exec_command(namespace, BACKEND, SEED)
