"""Secrets generated at set-up into `cluster/secrets/` (git-ignored), never committed.

The kustomize component in that folder turns them into Secrets with a secretGenerator.
Generation is idempotent: existing values are kept so that a running topology's passwords do
not change under it."""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from finchsim.errors import PlatformError
from finchsim.project import Project

STAGING_USER = "finch"


@dataclass(frozen=True)
class SecretFile:
    """One generated file inside a kustomize secret component under `cluster/secrets/`."""

    component: str
    name: str
    keys: tuple[str, ...] = ()  # key=value env file when set; htpasswd otherwise


SECRET_FILES = (
    SecretFile("app", "finch.env", ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "DJANGO_SECRET_KEY")),
    SecretFile("monitoring", "grafana.env", ("GF_SECURITY_ADMIN_PASSWORD",)),
    SecretFile("staging-auth", "auth.htpasswd"),
)


def secret_files(project: Project) -> list[Path]:
    """The generated files the kustomize secret components read."""
    return [project.cluster / "secrets" / f.component / f.name for f in SECRET_FILES]


def ensure_secrets(project: Project) -> list[Path]:
    """Create any missing secret file; return the files created (empty when all existed)."""
    created: list[Path] = []
    for spec in SECRET_FILES:
        path = project.cluster / "secrets" / spec.component / spec.name
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if spec.keys:
            text = "".join(f"{key}={secrets.token_urlsafe(32)}\n" for key in spec.keys)
        else:
            password = secrets.token_urlsafe(18)
            text = f"{STAGING_USER}:{_apr1(password)}\n"
            # The plain password, for the user who wants to log in to staging.
            _write_private(path.with_suffix(".txt"), f"{STAGING_USER}:{password}\n")
        _write_private(path, text)
        created.append(path)
    return created


def read_env(project: Project, component: str = "app") -> dict[str, str]:
    """The generated key=value secrets of one component, for platforms that run processes."""
    spec = next(f for f in SECRET_FILES if f.component == component and f.keys)
    path = project.cluster / "secrets" / component / spec.name
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs}


def _apr1(password: str) -> str:
    # nginx implements apr1 itself (no dependency on the libc's crypt()), in both plain nginx
    # and ingress-nginx, so the same file works on every platform.
    try:
        done = subprocess.run(
            ["openssl", "passwd", "-apr1", "-stdin"],
            input=password,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PlatformError(f"cannot hash the staging password with openssl: {exc}") from exc
    return done.stdout.strip()


def _write_private(path: Path, text: str) -> None:
    path.touch(mode=0o600)
    path.write_text(text)
