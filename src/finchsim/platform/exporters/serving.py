"""A Prometheus text endpoint on 127.0.0.1 for the exporters that run inside the platform
process (the kube-state exporter, the ingress controller's metrics): `/healthz` says ok, every
other path is the exposition `body()` returns at that moment."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client.exposition import CONTENT_TYPE_LATEST, ThreadingWSGIServer

from finchsim.errors import PlatformError


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """A scrape every few seconds would flood the caller's log."""


class MetricsEndpoint:
    """Serves `body()` from a daemon thread; `port` 0 binds a free one (`bound_port`)."""

    def __init__(self, body: Callable[[], bytes], name: str, port: int = 0) -> None:
        self.body = body
        self.name = name
        self.port = port
        self._server: Any = None

    @property
    def bound_port(self) -> int:
        if self._server is None:
            raise PlatformError(f"the {self.name} endpoint is not started")
        return int(self._server.server_port)

    def start(self) -> None:
        self._server = make_server(
            "127.0.0.1", self.port, self._app, ThreadingWSGIServer, handler_class=_QuietHandler
        )
        threading.Thread(
            target=self._server.serve_forever, name=f"{self.name}-http", daemon=True
        ).start()

    def stop(self) -> None:
        """Idempotent."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        body = self.body()
        start_response(
            "200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))]
        )
        return [body]
