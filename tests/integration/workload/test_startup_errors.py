"""Bad configuration and an unreachable database stop each entry point with one clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from finchsim.platform.ports import free_port
from tests.integration.workload.helpers import BACKEND, BIN, base_env, manage

pytestmark = pytest.mark.integration


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=BACKEND, env=env, capture_output=True, text=True, timeout=60, check=False
    )


ENTRY_POINTS = {
    "manage.py migrate": [sys.executable, "manage.py", "migrate", "--noinput"],
    "gunicorn": [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py"],
    "celery worker": [str(BIN / "celery"), "-A", "finchapp", "worker"],
    "celery beat": [str(BIN / "celery"), "-A", "finchapp", "beat"],
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_unknown_cost_profile(entry: str) -> None:
    env = base_env(FINCH_COST_PROFILE="gigantic", GUNICORN_BIND=f"127.0.0.1:{free_port()}")
    done = run(ENTRY_POINTS[entry], env)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "FINCH_COST_PROFILE: unknown profile 'gigantic'" in output, output
    assert "heavy, light, standard" in output
    assert "Traceback" not in output


def test_invalid_overrides_are_all_reported() -> None:
    done = manage(
        base_env(FINCH_CPU_MS="lots", FINCH_CACHE_HIT_RATIO="1.5", POSTGRES_PORT="x"), "migrate"
    )
    assert done.returncode == 2
    assert "FINCH_CPU_MS: expected int in [0, 60000], got 'lots'" in done.stderr
    assert "FINCH_CACHE_HIT_RATIO: expected float in [0.0, 1.0], got 1.5" in done.stderr
    assert "POSTGRES_PORT: expected an integer in [1, 65535], got 'x'" in done.stderr
    assert "Traceback" not in done.stderr


def test_broken_profiles_file(tmp_path: Path) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text(
        "apiVersion: finchsim/v1\nkind: CostProfiles\ndefault: x\n"
        "profiles:\n  x: {cpu_ms: -1, list_rows: 5, payload_kb: 1, "
        "cache_hit_ratio: 0.5, task_cpu_ms: 0, extra: 1}\n"
    )
    done = manage(base_env(FINCH_COST_PROFILES_FILE=str(path)), "check")
    assert done.returncode == 2
    assert f"{path}: profiles.x.cpu_ms: expected int in [0, 60000], got -1" in done.stderr
    assert f"{path}: profiles.x.extra: unknown field" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [["migrate", "--noinput"], ["check_ready"]])
def test_unreachable_database_at_start(command: list[str]) -> None:
    port = free_port()  # nothing listens there
    done = manage(base_env(POSTGRES_HOST="127.0.0.1", POSTGRES_PORT=str(port)), *command)
    assert done.returncode == 3, done.stderr
    assert f"cannot reach PostgreSQL at 127.0.0.1:{port}" in done.stderr
    assert "Connection refused" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
