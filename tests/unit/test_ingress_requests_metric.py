"""nginx_ingress_controller_requests served from the ingress access log over HTTP: the labels
of ingress-nginx's socket collector, counts that grow with the log between scrapes, and the
catch-all server's 404s left out."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from finchsim.platform.providers.ingress_metrics import IngressMetricsExporter

API = "finch-api finch-backend /"
NAME = "nginx_ingress_controller_requests"


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[IngressMetricsExporter]:
    exporter = IngressMetricsExporter(tmp_path / "access.log", "finch-production")
    exporter.start()
    try:
        yield exporter
    finally:
        exporter.stop()


def scrape(exporter: IngressMetricsExporter) -> dict[tuple[tuple[str, str], ...], float]:
    url = f"http://127.0.0.1:{exporter.bound_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == NAME
    }


def labels(status: str, method: str = "GET") -> tuple[tuple[str, str], ...]:
    return tuple(
        sorted(
            {
                "canary": "",
                "controller_class": "k8s.io/ingress-nginx",
                "controller_namespace": "ingress-nginx",
                "controller_pod": "ingress-nginx-controller-local",
                "host": "api.finch.example.com",
                "ingress": "finch-api",
                "method": method,
                "namespace": "finch-production",
                "path": "/",
                "service": "finch-backend",
                "status": status,
            }.items()
        )
    )


def test_counts_by_status_grow_between_scrapes(
    exporter: IngressMetricsExporter, tmp_path: Path
) -> None:
    log = tmp_path / "access.log"
    assert scrape(exporter) == {}  # no log yet: no series, as before a first request
    line = "1700000000.000 api.finch.example.com {} 0.010 {} {} " + API + "\n"
    log.write_text(
        line.format(200, "127.100.0.5:8000", "GET") * 3
        + line.format(429, "-", "GET")
        + line.format(201, "127.100.0.5:8000", "POST")
        + "1700000000.000 other.example 404 0.000 - GET - - -\n"
    )
    assert scrape(exporter) == {labels("200"): 3, labels("429"): 1, labels("201", "POST"): 1}
    with log.open("a") as out:
        out.write(line.format(429, "-", "GET") * 2)
    assert scrape(exporter)[labels("429")] == 3
