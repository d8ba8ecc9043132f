"""The staging overlay on the local platform: its ingress asks for the generated basic-auth
credentials, and the htpasswd file the platform writes for nginx is private (0600, owned by the
user nginx's workers run as)."""

from __future__ import annotations

import base64
import os
import pwd
import stat
from collections.abc import Iterator

import pytest

from finchsim.platform.local.ingress import NGINX_WORKER_USER
from finchsim.platform.local.platform import LocalPlatform
from finchsim.project import Project
from tests.integration.platform.support import get

pytestmark = pytest.mark.integration
API = "api.staging.finch.example.com"


@pytest.fixture(scope="module")
def staging(project: Project) -> Iterator[LocalPlatform]:
    plat = LocalPlatform(project, "staging")
    plat.up(timeout=180)
    try:
        yield plat
    finally:
        plat.down()


def test_basic_auth_with_the_generated_credentials(
    staging: LocalPlatform, project: Project
) -> None:
    base = staging.ingress_url(API)
    assert get(f"{base}/healthz/ready", API)[0] == 401
    plain = (project.cluster / "secrets" / "staging-auth" / "auth.txt").read_text().strip()
    token = base64.b64encode(plain.encode()).decode()
    status, _ = get(f"{base}/healthz/ready", API, headers={"Authorization": f"Basic {token}"})
    assert status == 200
    htpasswd = list((staging.run_dir).glob("*.htpasswd"))
    assert htpasswd, sorted(os.listdir(staging.run_dir))
    for path in htpasswd:
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o600, oct(info.st_mode)
        assert info.st_uid == pwd.getpwnam(NGINX_WORKER_USER).pw_uid
