"""The built SPA behind the project's nginx template: caching headers, SPA fallback, /health,
runtime /config.js. Needs `npm ci && npm run build` in cluster/workload/frontend (make setup)."""

from __future__ import annotations

import re
import shutil
import string
from collections.abc import Iterator
from pathlib import Path

import pytest

from finchsim.platform.local.processes import Proc, spawn
from finchsim.platform.ports import free_port
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
    # Same substitution as the container's envsubst: only FINCH_* names, nginx's $vars kept.
    values = {
        "FINCH_LISTEN_ADDRESS": "127.0.0.1",
        "FINCH_LISTEN_PORT": str(port),
        "FINCH_STATIC_ROOT": str(DIST),
        "FINCH_RUN_DIR": str(private_dir),
        "FINCH_API_BASE_URL": "http://api.test:8000",
    }
    for name in ("nginx.conf", "config.js"):
        template = (FRONTEND / "nginx" / f"{name}.template").read_text()
        (private_dir / name).write_text(string.Template(template).safe_substitute(values))
    proc: Proc = spawn(
        ["nginx", "-e", "stderr", "-c", str(private_dir / "nginx.conf"), "-g", "daemon off;"],
        env={"PATH": "/usr/sbin:/usr/bin"},
        cwd=private_dir,
        log_path=private_dir / "nginx.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http(f"{url}/health", timeout=2).status == 200, 10, "nginx", proc)
        yield url
    finally:
        proc.terminate(10)


def test_spa_is_served_with_the_right_caching(nginx: str) -> None:
    index = http(f"{nginx}/")
    assert index.status == 200 and index.headers["Cache-Control"] == "no-cache"
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
