"""Cost profiles: how much CPU, rows, bytes and cache misses one request costs.

Read once at start from cost-profiles.yaml plus single-field env overrides. Any problem is
collected (all at once) into a ConfigError whose message names the file or variable and what
was expected; the entry points print it and exit without a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "cost-profiles.yaml"

# field -> (type, minimum, maximum, env override)
FIELDS: dict[str, tuple[type, float, float, str]] = {
    "cpu_ms": (int, 0, 60_000, "FINCH_CPU_MS"),
    "list_rows": (int, 1, 10_000, "FINCH_LIST_ROWS"),
    "payload_kb": (int, 0, 16_384, "FINCH_PAYLOAD_KB"),
    "cache_hit_ratio": (float, 0.0, 1.0, "FINCH_CACHE_HIT_RATIO"),
    "task_cpu_ms": (int, 0, 60_000, "FINCH_TASK_CPU_MS"),
}


class ConfigError(Exception):
    """The workload's configuration is invalid; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class CostProfile:
    """The cost of one request of each kind, after env overrides."""

    name: str
    cpu_ms: int
    list_rows: int
    payload_kb: int
    cache_hit_ratio: float
    task_cpu_ms: int


def _check(value: Any, field: str, where: str, problems: list[str]) -> float | None:
    kind, low, high, _ = FIELDS[field]
    ok_type = (int, float) if kind is float else (int,)
    if isinstance(value, bool) or not isinstance(value, ok_type):
        problems.append(f"{where}: expected {kind.__name__} in [{low}, {high}], got {value!r}")
        return None
    if not low <= value <= high:
        problems.append(f"{where}: expected {kind.__name__} in [{low}, {high}], got {value!r}")
        return None
    return value


def _parse_env(raw: str, field: str, var: str, problems: list[str]) -> float | None:
    kind = FIELDS[field][0]
    try:
        value: float = kind(raw)
    except ValueError:
        low, high = FIELDS[field][1:3]
        problems.append(f"{var}: expected {kind.__name__} in [{low}, {high}], got {raw!r}")
        return None
    return _check(value, field, var, problems)


def _read_file(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        problems.append(f"{path}: cannot read cost profiles ({exc.strerror})")
        return {}
    except yaml.YAMLError as exc:
        problems.append(f"{path}: not valid YAML ({exc})")
        return {}
    if not isinstance(doc, dict):
        problems.append(f"{path}: expected a mapping with apiVersion, kind, default, profiles")
        return {}
    if doc.get("apiVersion") != "finchsim/v1" or doc.get("kind") != "CostProfiles":
        problems.append(f"{path}: expected apiVersion: finchsim/v1 and kind: CostProfiles")
    extra = set(doc) - {"apiVersion", "kind", "default", "profiles"}
    if extra:
        problems.append(f"{path}: unknown top-level fields {sorted(extra)}")
    profiles = doc.get("profiles")
    if not isinstance(profiles, dict) or not profiles:
        problems.append(f"{path}: profiles: expected a non-empty mapping of name -> fields")
        return {}
    for name, fields in profiles.items():
        if not isinstance(fields, dict):
            problems.append(f"{path}: profiles.{name}: expected a mapping of {sorted(FIELDS)}")
            continue
        for key in sorted(set(fields) - set(FIELDS)):
            problems.append(f"{path}: profiles.{name}.{key}: unknown field")
        for key in sorted(set(FIELDS) - set(fields)):
            problems.append(f"{path}: profiles.{name}.{key}: missing")
        for key in sorted(set(FIELDS) & set(fields)):
            _check(fields[key], key, f"{path}: profiles.{name}.{key}", problems)
    if doc.get("default") not in profiles:
        problems.append(f"{path}: default: expected one of {sorted(profiles)}")
    return doc


def load_profile(env: Mapping[str, str] | None = None) -> CostProfile:
    """The cost profile selected by env (FINCH_COST_PROFILE, overrides); raises ConfigError."""
    env = os.environ if env is None else env
    path = Path(env.get("FINCH_COST_PROFILES_FILE") or DEFAULT_FILE)
    problems: list[str] = []
    doc = _read_file(path, problems)
    if problems:
        raise ConfigError(problems)
    name = env.get("FINCH_COST_PROFILE") or doc["default"]
    if name not in doc["profiles"]:
        known = ", ".join(sorted(doc["profiles"]))
        raise ConfigError(
            [f"FINCH_COST_PROFILE: unknown profile {name!r} (known in {path}: {known})"]
        )
    values = dict(doc["profiles"][name])
    for field, (_, _, _, var) in FIELDS.items():
        raw = env.get(var)
        if raw not in (None, ""):
            parsed = _parse_env(raw, field, var, problems)
            if parsed is not None:
                values[field] = parsed
    if problems:
        raise ConfigError(problems)
    return CostProfile(
        name=name,
        cpu_ms=int(values["cpu_ms"]),
        list_rows=int(values["list_rows"]),
        payload_kb=int(values["payload_kb"]),
        cache_hit_ratio=float(values["cache_hit_ratio"]),
        task_cpu_ms=int(values["task_cpu_ms"]),
    )
