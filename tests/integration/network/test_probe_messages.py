"""The kubelet's probe attempts against real sockets: pass, and each failure worded as the
kubelet's probers word it in the Unhealthy Event (pkg/probe/http/http.go, pkg/probe/tcp/tcp.go)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from finchsim.platform.kubelet.probes import attempt
from finchsim.platform.ports import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Iterator[int]:
    """127.0.0.1 serving 200 on /ok, 500 on /broken."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/ok" else 500)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_passing_probes_say_nothing(server: int) -> None:
    assert attempt("http", "127.0.0.1", server, "/ok", 2) == ""
    assert attempt("tcp", "127.0.0.1", server, "", 2) == ""


def test_a_bad_status_names_it(server: int) -> None:
    assert attempt("http", "127.0.0.1", server, "/broken", 2) == (
        "HTTP probe failed with statuscode: 500"
    )


def test_nothing_listening_is_connection_refused() -> None:
    port = free_port()
    assert attempt("tcp", "127.0.0.1", port, "", 2) == (
        f"dial tcp 127.0.0.1:{port}: connect: connection refused"
    )
    assert attempt("http", "127.0.0.1", port, "/healthz", 2) == (
        f'Get "http://127.0.0.1:{port}/healthz": dial tcp 127.0.0.1:{port}: connect: '
        "connection refused"
    )
