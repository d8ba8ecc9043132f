"""The rendered ingress in real nginx (Debian's), in front of a tiny real upstream: bursts from
one client address, and X-Forwarded-For chains, counted per annotation combination.

Expected counts come from nginx's limit_req leaky bucket (ngx_http_limit_req_module.c
`ngx_http_limit_req_lookup`): a client's first request finds no state and passes with excess 0;
each accepted one adds 1 request of excess, less `rate x elapsed`; a request that would take the
excess above `burst` is rejected and changes nothing, and with several `limit_req` a request
counts in none of them unless it passes all (`ngx_http_limit_req_account`). With `nodelay` the
accepted ones go through at once. So a burst of n requests over T seconds passes between
`burst + 1` and `burst + 1 + ceil(rate x T)`, and with several limits the tightest one decides.
"""

from __future__ import annotations

import http.client
import math
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from finchsim.platform.local.ingress import (
    ControllerSettings,
    plan_servers,
    render_config,
    upstream_name,
)
from finchsim.platform.local.processes import Proc, spawn
from finchsim.platform.topology import Ingress, IngressRule

pytestmark = pytest.mark.integration

PREFIX = "nginx.ingress.kubernetes.io/"
LIMIT_REQ_STATUS = 429  # as cluster/kind/ingress-nginx-controller-settings.yaml sets it
LIMIT_CONN_STATUS = 503  # ingress-nginx's default limit-conn-status-code


def ingress(name: str, host: str, path: str = "/", **notes: str) -> Ingress:
    annotations = {PREFIX + k.replace("_", "-"): v for k, v in notes.items()}
    return Ingress(name, (IngressRule(host, "backend", 80, path),), annotations)


# One nginx for every case: one host per annotation combination (own zones, own buckets).
INGRESSES = [
    ingress("rps", "rps.test", limit_rps="5"),  # burst 25
    ingress("rpm", "rpm.test", limit_rpm="12"),  # burst 60
    ingress("both", "both.test", limit_rps="2", limit_rpm="600"),  # rps binds: burst 10
    ingress("both-rpm", "both-rpm.test", limit_rps="100", limit_rpm="6"),  # rpm binds: 30
    ingress("mult", "mult.test", limit_rps="3", limit_burst_multiplier="2"),  # burst 6
    ingress("conn", "conn.test", limit_connections="2"),
    ingress("allow", "allow.test", limit_rps="1", limit_allowlist="10.1.0.0/16, 192.0.2.7"),
    ingress("allow-alias", "alias.test", limit_rps="1", limit_whitelist="10.1.0.0/16"),
    # Two Ingresses for one host, as cluster/base/ingress.yaml's finch-api and
    # finch-api-metrics-deny: one server, /metrics open to 127.0.0.1 only.
    ingress("api", "api.test"),
    ingress("api-metrics-deny", "api.test", "/metrics", whitelist_source_range="127.0.0.1/32"),
]


class Upstream(ThreadingHTTPServer):
    """200 for every path; /slow waits until `release` is set, counting requests in flight."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.in_flight = 0
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes

    def do_GET(self) -> None:
        server: Any = self.server
        if self.path == "/slow":
            with server.lock:
                server.in_flight += 1
            server.release.wait(10)
            with server.lock:
                server.in_flight -= 1
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


class Nginx:
    def __init__(self, port: int, proc: Proc, conf: str) -> None:
        self.port, self.proc, self.conf = port, proc, conf


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def nginx(upstream: Upstream) -> Iterator[Nginx]:
    run_dir = Path(tempfile.mkdtemp(prefix="finchsim-ingress-test-"))
    run_dir.chmod(0o755)  # nginx's workers (nobody) create their temp files under it
    proc = None
    try:
        openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        keys = ["-keyout", str(run_dir / "tls.key"), "-out", str(run_dir / "tls.crt")]
        subprocess.run([*openssl, "-subj", "/CN=test", *keys], check=True, capture_output=True)
        servers, limits = plan_servers(INGRESSES, {}, "test")
        settings = ControllerSettings.from_configmap(
            {"limit-req-status-code": str(LIMIT_REQ_STATUS)}
        )
        port = free_port()
        host, up_port = upstream.server_address[:2]
        conf = render_config(
            servers=servers,
            rate_limits=limits,
            upstreams={upstream_name("backend", 80): [(str(host), int(up_port))]},
            settings=settings,
            http_port=port,
            https_port=free_port(),
            run_dir=run_dir,
            cert=run_dir / "tls.crt",
            key=run_dir / "tls.key",
        )
        (run_dir / "nginx.conf").write_text(conf)
        proc = spawn(
            ["nginx", "-c", str(run_dir / "nginx.conf"), "-p", str(run_dir)],
            env={"PATH": "/usr/sbin:/usr/bin"},
            cwd=run_dir,
            log_path=run_dir / "nginx.out",
        )
        wait_until(lambda: accepts(port) or not proc.alive(), 10, "nginx to listen")
        assert proc.alive(), (run_dir / "nginx.out").read_text()
        yield Nginx(port, proc, conf)
    finally:
        if proc is not None:
            proc.terminate(5.0)
        shutil.rmtree(run_dir, ignore_errors=True)


def burst(
    nginx: Nginx,
    host: str,
    n: int,
    xff: Callable[[int], str | None] = lambda i: None,
    path: str = "/",
) -> tuple[Counter[int], float]:
    """n GETs back to back on one keep-alive connection: status counts and seconds taken."""
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=5)
    codes: Counter[int] = Counter()
    start = time.monotonic()
    try:
        for i in range(n):
            headers = {"Host": host}
            if (forwarded := xff(i)) is not None:
                headers["X-Forwarded-For"] = forwarded
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            codes[response.status] += 1
    finally:
        conn.close()
    return codes, time.monotonic() - start


def bounds(limits: list[tuple[float, int]], elapsed: float) -> tuple[int, int]:
    """Requests a back-to-back burst passes through `limit_req`s of (rate per second, burst)
    over `elapsed` seconds: (fewest, most), the tightest limit deciding."""
    low = min(b + 1 for _, b in limits)
    high = min(b + 1 + math.ceil(rate * elapsed) for rate, b in limits)
    return low, high


def check_burst(
    nginx: Nginx,
    host: str,
    n: int,
    limits: list[tuple[float, int]],
    xff: Callable[[int], str | None] = lambda i: None,
) -> int:
    codes, elapsed = burst(nginx, host, n, xff)
    low, high = bounds(limits, elapsed)
    print(f"{host}: {n} requests in {elapsed:.3f}s -> {dict(codes)}; expected {low}..{high} pass")
    assert set(codes) <= {200, LIMIT_REQ_STATUS}
    assert low <= codes[200] <= high
    assert codes[200] + codes[LIMIT_REQ_STATUS] == n
    return codes[200]


def test_limit_rps_alone(nginx: Nginx) -> None:
    check_burst(nginx, "rps.test", 60, [(5, 25)], lambda i: "198.51.100.1")


def test_limit_rpm_alone(nginx: Nginx) -> None:
    check_burst(nginx, "rpm.test", 90, [(12 / 60, 60)], lambda i: "198.51.100.1")


def test_limit_rps_and_rpm_together_both_limit(nginx: Nginx) -> None:
    # ratelimit/main.go makes both zones; before, only limit-rpm was rendered (3000 burst).
    check_burst(nginx, "both.test", 40, [(2, 10), (600 / 60, 3000)], lambda i: "198.51.100.1")
    check_burst(nginx, "both-rpm.test", 60, [(100, 500), (6 / 60, 30)], lambda i: "198.51.100.1")


def test_burst_multiplier(nginx: Nginx) -> None:
    check_burst(nginx, "mult.test", 20, [(3, 6)], lambda i: "198.51.100.1")


def test_allowlisted_addresses_are_not_limited(nginx: Nginx) -> None:
    for host in ("allow.test", "alias.test"):
        codes, _ = burst(nginx, host, 30, lambda i: "10.1.2.3")
        print(host, "allowlisted 10.1.2.3:", dict(codes))
        assert codes == Counter({200: 30})
    codes, _ = burst(nginx, "allow.test", 30, lambda i: "192.0.2.7")
    assert codes == Counter({200: 30})
    check_burst(nginx, "allow.test", 30, [(1, 5)], lambda i: "198.51.100.2")
    check_burst(nginx, "alias.test", 30, [(1, 5)], lambda i: "192.0.2.7")  # not in its list


def test_the_client_is_the_leftmost_forwarded_address(nginx: Nginx) -> None:
    # Leftmost allowlisted, rightmost not: the client is allowlisted (real_ip_recursive on).
    codes, _ = burst(nginx, "allow.test", 30, lambda i: "10.1.2.3, 198.51.100.3")
    print("'10.1.2.3, 198.51.100.3':", dict(codes))
    assert codes == Counter({200: 30})
    # Leftmost not allowlisted, rightmost allowlisted: limited (before, the rightmost won).
    check_burst(nginx, "allow.test", 30, [(1, 5)], lambda i: "198.51.100.4, 10.1.2.3")
    # Different proxies in between, one client: one bucket.
    check_burst(nginx, "rps.test", 60, [(5, 25)], lambda i: f"198.51.100.5, 10.0.0.{i % 3}")


def test_limit_connections(nginx: Nginx, upstream: Upstream) -> None:
    def get(path: str, client: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=10)
        try:
            conn.request("GET", path, headers={"Host": "conn.test", "X-Forwarded-For": client})
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    upstream.release.clear()
    held: list[int] = []
    threads = [
        threading.Thread(target=lambda: held.append(get("/slow", "198.51.100.6"))) for _ in range(2)
    ]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: upstream.in_flight == 2, 10, "2 requests held by the upstream")
        extra = [get("/", "198.51.100.6") for _ in range(3)]
        other = get("/", "198.51.100.7")
    finally:
        upstream.release.set()
        for t in threads:
            t.join(10)
    print(
        f"in flight 2; 3 more from the same client: {extra}; another client: {other}; "
        f"held ones: {held}"
    )
    assert extra == [LIMIT_CONN_STATUS] * 3
    assert other == 200
    assert held == [200, 200]


def test_ingresses_for_one_host_merge_and_whitelist_source_range(nginx: Nginx) -> None:
    def status(path: str, xff: str | None) -> int:
        codes, _ = burst(nginx, "api.test", 1, lambda i: xff, path)
        return next(iter(codes))

    got = {
        "/ from 203.0.113.7": status("/", "203.0.113.7"),
        "/metrics from 203.0.113.7": status("/metrics", "203.0.113.7"),
        "/metrics from 127.0.0.1 (no header)": status("/metrics", None),
        # with forwarded headers on, the leftmost address is whatever the client wrote
        "/metrics with X-Forwarded-For: 127.0.0.1": status("/metrics", "127.0.0.1"),
    }
    print(got)
    assert nginx.conf.count("server_name api.test;") == 1
    assert got == {
        "/ from 203.0.113.7": 200,
        "/metrics from 203.0.113.7": 403,
        "/metrics from 127.0.0.1 (no header)": 200,
        "/metrics with X-Forwarded-For: 127.0.0.1": 200,
    }
