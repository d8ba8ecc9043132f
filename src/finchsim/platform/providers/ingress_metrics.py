"""The local ingress controller's `/metrics`: `nginx_ingress_controller_requests`
(exporters.ingress_nginx) counted from the access log of the edge's nginx, on 127.0.0.1."""

from __future__ import annotations

import threading
from pathlib import Path

from prometheus_client.core import Metric

from finchsim.platform.exporters.ingress_nginx import Controller, request_families
from finchsim.platform.exporters.kube_state import render
from finchsim.platform.exporters.serving import MetricsEndpoint
from finchsim.platform.local.traffic import IngressTraffic


class IngressMetricsExporter:
    """Serves the counter on 127.0.0.1 (`bound_port`); each scrape first reads what nginx has
    flushed to its log since the last one (nginx flushes every second), so a scrape is at most
    a second behind the requests and costs only the new lines."""

    def __init__(
        self, access_log: Path, namespace: str, controller: Controller | None = None
    ) -> None:
        # limit_status only feeds IngressTraffic.rates(), which the counter does not use.
        self.traffic = IngressTraffic(access_log, namespace, limit_status=0)
        self.controller = controller or Controller()
        self._lock = threading.Lock()  # scrapes may overlap; the log offset is shared
        self._server = MetricsEndpoint(self._exposition, "ingress-metrics")

    @property
    def bound_port(self) -> int:
        return self._server.bound_port

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def collect(self) -> list[Metric]:
        with self._lock:
            self.traffic.read()
            return request_families(self.traffic.totals(), self.controller)

    def _exposition(self) -> bytes:
        return render(self.collect())
