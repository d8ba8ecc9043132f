"""Every load profile validates, and the locustfile runs headless through `LocustRun` against a
real local HTTP server that stands in for the ingress (answers the Finch endpoints with canned
JSON, serves a tiny SPA with cache headers, and rate-limits per X-Forwarded-For like nginx
`limit_req`). What Locust reports is checked against what the server counted."""

from __future__ import annotations

import json
import re
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from finchsim.errors import InputError, PlatformError
from finchsim.load import LoadResult, LocustRun, load_profile
from finchsim.project import Project
from tests.conftest import REPO

PROFILES = sorted((REPO / "loadtests" / "profiles").glob("*.yaml"))
INDEX = (
    '<html><head><script src="/config.js"></script>'
    '<script type="module" src="/assets/index-abc123.js"></script>'
    '<link rel="stylesheet" href="/assets/index-def456.css">'
    '<link rel="icon" href="/favicon.svg"></head><body></body></html>'
)
STATIC = {  # path -> (body, Cache-Control) as the frontend's nginx sends them
    "/": (INDEX, "no-cache"),
    "/config.js": ("window.FINCH_CONFIG = {};", "no-cache"),
    "/assets/index-abc123.js": ("console.log(1)", "public, max-age=31536000, immutable"),
    "/assets/index-def456.css": ("body{}", "public, max-age=31536000, immutable"),
    "/favicon.svg": ("<svg/>", ""),
}
API = {
    "/api/meta": {"account_ids": [1, 20], "accounts": 20, "categories": 5, "profile": {}},
    "/api/transactions": {"page": 1, "results": []},
    "/api/compute": {"cpu_ms": 1.0, "digest": "00"},
    "/api/tasks/stats": {"total": 0, "pending": 0},
}


@dataclass
class FakeIngress:
    """What the server saw: one (client ip, host, method, path, status) per request."""

    limit_per_ip: int | None = None  # answer `limit_status` once an address sent this many
    limit_status: int = 429
    seen: list[tuple[str, str, str, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def statuses(self) -> Counter[int]:
        return Counter(s for *_, s in self.seen)

    def ips(self) -> set[str]:
        return {ip for ip, *_ in self.seen}

    def answer(
        self, ip: str, host: str, method: str, path: str, etag: str | None, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            sent_before = sum(1 for seen_ip, *_ in self.seen if seen_ip == ip)
            status, headers, payload = self._route(host, method, path, etag, body)
            if self.limit_per_ip is not None and sent_before >= self.limit_per_ip:
                status, headers, payload = self.limit_status, {}, b"limited"
            self.seen.append((ip, host, method, path, status))
        return status, headers, payload

    def _route(
        self, host: str, method: str, path: str, etag: str | None, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        bare = path.split("?")[0]
        if host == "finch.example.com" and bare in STATIC:
            text, cache = STATIC[bare]
            tag = f'"{abs(hash(text))}"'
            headers = {"ETag": tag, **({"Cache-Control": cache} if cache else {})}
            return (304, headers, b"") if etag == tag else (200, headers, text.encode())
        if host != "api.finch.example.com":
            return 404, {}, b"unknown host"
        if method == "POST" and bare == "/api/transactions":
            data = json.loads(body)
            ok = {"account", "category", "amount_cents", "description"} <= set(data)
            return (201, {}, b'{"id": 1}') if ok else (400, {}, b"{}")
        if bare in API:
            return 200, {}, json.dumps(API[bare]).encode()
        if re.fullmatch(r"/api/accounts/\d+/summary", bare):
            return 200, {}, b'{"id": 1}'
        return 404, {}, b"{}"


def _handler(ingress: FakeIngress) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Locust's session expects

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, headers, payload = ingress.answer(
                self.headers.get("X-Forwarded-For", "-"),
                self.headers.get("Host", ""),
                self.command,
                self.path,
                self.headers.get("If-None-Match"),
                body,
            )
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def ingress() -> Iterator[FakeIngress]:
    fake = FakeIngress()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def run_profile(path: Path, ingress: FakeIngress, run_dir: Path) -> tuple[LoadResult, float]:
    """Run one profile to its end; the Locust process is gone afterwards, whatever happened."""
    with LocustRun(path, ingress.base_url, run_dir, project=Project(REPO)) as run:
        run.start()
        assert run.wait(), f"locust outlived its deadline:\n{run.log_tail()}"
        result = run.collect()
    assert not run.running
    return result, run.cpu_seconds


def write_profile(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "profile.yaml"
    path.write_text("apiVersion: finchsim/v1\nkind: LoadProfile\n" + textwrap.dedent(body))
    return path


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_shipped_profile_validates_and_is_bounded(path: Path) -> None:
    profile = load_profile(path)
    assert profile.maxRequests >= 1
    assert profile.stages_seconds <= profile.max_duration_seconds, "stages cut by maxDuration"


def test_required_profiles_are_shipped() -> None:
    assert {"baseline", "hpa-cpu", "rate-limit", "smoke"} <= {p.stem for p in PROFILES}


def test_smoke_profile_runs_and_totals_match_the_server(
    ingress: FakeIngress, tmp_path: Path
) -> None:
    result, _ = run_profile(REPO / "loadtests/profiles/smoke.yaml", ingress, tmp_path)
    seen = ingress.statuses()
    print("server:", seen, "locust:", result.status_counts)
    # Users finish their request when the shape ends (--stop-timeout): no in-flight gap.
    assert result.requests == len(ingress.seen)
    assert result.status_counts == dict(seen)
    assert result.failures == 0 and result.rate_limited == {} and result.exceptions == ()
    assert result.stop_reason == "stages done"
    assert result.users_started == 2 and len(ingress.ips()) == 2 == result.client_ips
    names = {e.name for e in result.endpoints}
    assert {
        "/api/meta",
        "/api/accounts/[id]/summary",
        "/api/transactions",
        "/api/compute",
        "/api/tasks/stats",
        "[spa] /",
        "[spa] /config.js",
        "[spa] /assets/[hashed]",
    } <= names
    # The browser cache: hashed assets fetched once, index.html revalidated (304) on reloads.
    paths = Counter((path, status) for _, _, _, path, status in ingress.seen)
    assert paths[("/assets/index-abc123.js", 200)] == 1
    assert paths[("/", 200)] == 1 and paths[("/", 304)] >= 1
    assert 6 <= result.duration_s <= 11 and result.history[-1].rps >= 0
    assert result.latency.p50 <= result.latency.p95 <= result.latency.p99
    assert (tmp_path / "load-result.json").is_file()


def test_shared_ip_is_rate_limited_and_counted(ingress: FakeIngress, tmp_path: Path) -> None:
    ingress.limit_per_ip = 15
    path = write_profile(
        tmp_path,
        """\
        stages: [{duration: 4s, users: 3, spawnRate: 3}]
        users:
          ApiUser: {weight: 1, wait: {type: constant, seconds: 0.1}}
          BrowserUser: {weight: 0}
        sharedClientIp: true
        maxRequests: 1000
        maxDuration: 10s
    """,
    )
    result, _ = run_profile(path, ingress, tmp_path / "run")
    limited = ingress.statuses()[429]
    print("server:", ingress.statuses(), "locust:", result.rate_limited)
    assert len(ingress.ips()) == 1 and result.client_ips == 1
    assert limited > 10
    assert result.rate_limited == {429: limited}
    assert result.failures == limited  # everything else succeeded
    assert result.requests == len(ingress.seen)
    failures_csv = (tmp_path / "run" / "locust_failures.csv").read_text()
    assert "rate limited 429" in failures_csv


def test_max_requests_ends_the_run_exactly(ingress: FakeIngress, tmp_path: Path) -> None:
    path = write_profile(
        tmp_path,
        """\
        stages: [{duration: 60s, users: 4, spawnRate: 4}]
        users:
          ApiUser: {weight: 1, wait: {type: constant, seconds: 0.05}}
          BrowserUser: {weight: 1, wait: {type: constant, seconds: 0.05}}
        maxRequests: 40
        maxDuration: 60s
    """,
    )
    result, _ = run_profile(path, ingress, tmp_path / "run")
    assert result.stop_reason == "maxRequests reached"
    assert len(ingress.seen) == 40 == result.requests
    assert result.duration_s < 15


def test_non_loopback_base_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        LocustRun(PROFILES[0], "https://10.1.2.3:443", tmp_path, project=Project(REPO))
    assert str(info.value) == (
        "base URL: https://10.1.2.3:443: refusing a non-loopback host: load goes to "
        "127.0.0.0/8, ::1 or localhost"
    )


def test_a_locust_that_does_not_start_raises_with_its_log(
    ingress: FakeIngress, tmp_path: Path
) -> None:
    run = LocustRun(
        REPO / "loadtests/profiles/smoke.yaml",
        ingress.base_url,
        tmp_path,
        project=Project(REPO),
        startup_timeout=0.01,
    )
    with pytest.raises(PlatformError, match=r"did not start within 0\.01s; last lines of"):
        run.start()
    assert not run.running


def test_stop_ends_a_running_locust_and_keeps_its_reports(
    ingress: FakeIngress, tmp_path: Path
) -> None:
    path = write_profile(
        tmp_path,
        """\
        stages: [{duration: 60s, users: 2, spawnRate: 2}]
        users: {ApiUser: {wait: {type: constant, seconds: 0.1}}, BrowserUser: {weight: 0}}
        maxRequests: 10000
        maxDuration: 60s
    """,
    )
    with LocustRun(path, ingress.base_url, tmp_path / "run", project=Project(REPO)) as run:
        run.start()
        assert not run.wait(timeout=3), "a 60 s profile ended by itself within 3 s"
        run.stop()
        assert not run.running
        result = run.collect()
    assert result.stop_reason == "stopped from outside"
    assert 0 < result.requests == len(ingress.seen)
