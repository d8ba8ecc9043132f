"""Secrets generated at set-up into `cluster/secrets/` (git-ignored), never committed.

The kustomize component in that folder turns them into Secrets with a secretGenerator.
Generation is idempotent: existing values are kept so that a running topology's passwords do
not change under it; a key missing from (or empty in) an existing file is added."""

from __future__ import annotations

import os
import pwd
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
    # A key=value env file when set, htpasswd otherwise. The keys are what the reference
    # workload reads from the Secret through envFrom (DJANGO_SECRET_KEY is required by
    # cluster/workload/backend/finchapp/env.py; the passwords must equal those PostgreSQL and
    # Redis get from the same Secret), so `finchsim validate` requires each to be set.
    keys: tuple[str, ...] = ()


SECRET_FILES = (
    SecretFile("app", "finch.env", ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "DJANGO_SECRET_KEY")),
    SecretFile("monitoring", "grafana.env", ("GF_SECURITY_ADMIN_PASSWORD",)),
    SecretFile("staging-auth", "auth.htpasswd"),
)


def secret_files(project: Project) -> list[Path]:
    """The generated files the kustomize secret components read."""
    return [project.cluster / "secrets" / f.component / f.name for f in SECRET_FILES]


def ensure_secrets(project: Project) -> dict[Path, str]:
    """Create any missing secret file and fill in keys missing from an env file; return what
    was done per file written (empty when everything was there)."""
    done: dict[Path, str] = {}
    for spec in SECRET_FILES:
        path = project.cluster / "secrets" / spec.component / spec.name
        existing = path.read_text() if path.exists() else None
        if spec.keys:
            have = _env_pairs(existing or "")
            missing = [key for key in spec.keys if not have.get(key, "").strip()]
            if not missing:
                continue
            kept = [line for line in (existing or "").splitlines() if _key(line) not in missing]
            new = [f"{key}={secrets.token_urlsafe(32)}" for key in missing]
            text = "".join(f"{line}\n" for line in kept + new)
            path.parent.mkdir(parents=True, exist_ok=True)
            what = "generated" if existing is None else "added " + ", ".join(missing) + " to"
        else:
            if existing is not None and existing.strip():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            password = secrets.token_urlsafe(18)
            text = f"{STAGING_USER}:{_apr1(password)}\n"
            # The plain password, for the user who wants to log in to staging.
            write_private(path.with_suffix(".txt"), f"{STAGING_USER}:{password}\n")
            what = "generated"
        write_private(path, text)
        done[path] = what
    return done


def read_env(project: Project, component: str = "app") -> dict[str, str]:
    """The generated key=value secrets of one component, for platforms that run processes."""
    spec = next(f for f in SECRET_FILES if f.component == component and f.keys)
    return _env_pairs((project.cluster / "secrets" / component / spec.name).read_text())


def _key(line: str) -> str:
    return line.split("=", 1)[0].strip() if "=" in line else ""


def _env_pairs(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key.strip(): value for key, value in pairs}


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


def write_private(path: Path, text: str, owner: str | None = None) -> None:
    """Write `text` readable by its owner only (0600, also when the file existed), owned by
    the OS user `owner` when given (a process of that user must read it) and we are root."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(fd, 0o600)
        if owner is not None and os.geteuid() == 0:
            entry = pwd.getpwnam(owner)
            os.fchown(fd, entry.pw_uid, entry.pw_gid)
        out.write(text)
