"""The built SPA behind the project's nginx template, launched by the local platform's own
frontend runtime (as a frontend pod of `make simulate` is): caching headers, SPA fallback,
/health, runtime /config.js. Needs `npm ci && npm run build` in cluster/workload/frontend
(make setup)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from finchsim.platform.local.processes import Proc, spawn
from finchsim.platform.local.runtimes import PodEnv, runtime_for
from finchsim.platform.ports import free_port
from finchsim.platform.topology import Container, Resources
from tests.conftest import REPO
from tests.integration.workload.helpers import WORKLOAD, http, wait_for

pytestmark = pytest.mark.integration
FRONTEND = WORKLOAD / "frontend"
DIST = FRONTEND / "dist"


@pytest.fixture
def nginx(private_dir: Path) -> Iterator[str]:
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed")
    if not (DIST / "index.html").exists():
        pytest.skip(
            "frontend not built: run `npm ci && npm run build` in cluster/workload/frontend"
        )
    port = free_port()
    container = Container(
        "finch-frontend",
        "finch-sim/finch-frontend:dev",
        (),
        (),
        {"FINCH_API_BASE_URL": "http://api.test:8000"},
        {"http": 8080},
        Resources(),
    )
    pod = PodEnv("finch-frontend-test", private_dir, {8080: port}, {}, {}, REPO)
    launch = runtime_for(container)(container, pod)
    proc: Proc = spawn(
        launch.argv,
        env=launch.env,
        cwd=launch.cwd,
        log_path=private_dir / "nginx.log",
        user=launch.user,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http(f"{url}/health", timeout=2).status == 200, 10, "nginx", proc)
        yield url
    finally:
        proc.terminate(10)


def test_spa_is_served_with_the_right_caching(nginx: str) -> None:
    index = http(f"{nginx}/")
    assert index.status == 200 and index.headers["Cache-Control"] == "no-cache", index
    assert index.body == (DIST / "index.html").read_bytes()
    assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', index.body.decode())
    assert {Path(a).suffix for a in assets} >= {".js", ".css"}, assets
    for asset in assets:
        response = http(nginx + asset)
        assert response.status == 200
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    svg = [p.name for p in (DIST / "assets").glob("*.svg")]
    assert svg and http(f"{nginx}/assets/{svg[0]}").headers["Content-Type"] == "image/svg+xml"
    deep = http(f"{nginx}/accounts/42/history")  # client-side route: index.html, not 404
    assert deep.status == 200 and deep.body == index.body
    assert http(f"{nginx}/assets/missing-abc123.js").status == 404
    health = http(f"{nginx}/health")
    assert health.status == 200 and health.body == b"ok\n"
    config = http(f"{nginx}/config.js")
    assert config.headers["Cache-Control"] == "no-cache"
    assert b'apiBaseUrl: "http://api.test:8000"' in config.body
