"""The staging overlay on the local platform: its ingress asks for the generated basic-auth
credentials, and the htpasswd file the edge writes for nginx is private (0600, owned by the
user nginx's workers run as), found where the running nginx reads it."""

from __future__ import annotations

import base64
import pwd
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from finchsim.platform.base import Platform
from finchsim.platform.local.ingress import NGINX_WORKER_USER
from finchsim.project import Project
from tests.integration.platform.support import get, listener, routed
from tests.platform.conftest import bring_up

pytestmark = pytest.mark.kwok
API = "api.staging.finch.example.com"


@pytest.fixture(scope="module")
def staging(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    plat = bring_up("local", project, tmp_path_factory.mktemp("staging"), [], overlay="staging")
    try:
        yield plat
    finally:
        plat.down()


def test_basic_auth_with_the_generated_credentials(staging: Platform, project: Project) -> None:
    base = staging.ingress_url(API)
    assert get(f"{base}/healthz/ready", API)[0] == 401
    plain = (project.cluster / "secrets" / "staging-auth" / "auth.txt").read_text().strip()
    token = base64.b64encode(plain.encode()).decode()
    wrong = base64.b64encode(b"finch:not-the-password").decode()
    assert get(f"{base}/healthz/ready", API, headers={"Authorization": f"Basic {wrong}"})[0] == 401
    routed(staging, f"{base}/healthz/ready", API, headers={"Authorization": f"Basic {token}"})
    # nginx runs in the directory it reads its configuration (and the htpasswd files) from.
    ingress_dir = Path(listener(base).cwd())
    htpasswd = sorted(ingress_dir.glob("*.htpasswd"))
    assert htpasswd, sorted(p.name for p in ingress_dir.iterdir())
    for path in htpasswd:
        info = path.stat()
        assert stat.S_IMODE(info.st_mode) == 0o600, (path, oct(info.st_mode))
        assert info.st_uid == pwd.getpwnam(NGINX_WORKER_USER).pw_uid, path
