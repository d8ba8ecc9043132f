"""The exporter's refresh and serving against a real local HTTP server standing in for the API
server (the list endpoints only): a scrape gets the last refresh, a failing list keeps the
kind's previous objects and is counted as an error, and the families are rebuilt only when an
object changed."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from finchsim.platform.exporters.kube_state import KubeStateExporter

PATHS = {
    "pods": "/api/v1/pods",
    "deployments": "/apis/apps/v1/deployments",
    "statefulsets": "/apis/apps/v1/statefulsets",
    "horizontalpodautoscalers": "/apis/autoscaling/v2/horizontalpodautoscalers",
    "nodes": "/api/v1/nodes",
    "namespaces": "/api/v1/namespaces",
    "persistentvolumeclaims": "/api/v1/persistentvolumeclaims",
    "resourcequotas": "/api/v1/resourcequotas",
    "cronjobs": "/apis/batch/v1/cronjobs",
    "jobs": "/apis/batch/v1/jobs",
}


class FakeApi:
    def __init__(self) -> None:
        self.items: dict[str, list[dict[str, Any]]] = {path: [] for path in PATHS.values()}
        self.failing: set[str] = set()
        self.requests: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                api.requests.append(self.path)
                if path in api.failing or path not in api.items:
                    body = json.dumps({"kind": "Status", "message": "etcd is down", "code": 500})
                    self.send_response(500)
                else:
                    assert "resourceVersion=0" in query, query
                    body = json.dumps({"items": api.items[path]})
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def client(self) -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = f"http://127.0.0.1:{self.server.server_port}"
        return client.ApiClient(configuration)


def deployment(name: str, replicas: int, version: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": name, "resourceVersion": version},
        "spec": {"replicas": replicas},
        "status": {},
    }


@pytest.fixture
def fake() -> Iterator[FakeApi]:
    api = FakeApi()
    yield api
    api.server.shutdown()
    api.server.server_close()


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }


def replicas(got: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> float | None:
    key = (
        "kube_deployment_spec_replicas",
        frozenset({"namespace": "ns", "deployment": "d"}.items()),
    )
    return got.get(key)


def lists(got: dict[tuple[str, frozenset[tuple[str, str]]], float], result: str) -> float:
    key = frozenset({"resource": "deployments", "result": result}.items())
    return got.get(("kube_state_metrics_list_total", key), 0.0)


def test_a_scrape_serves_the_last_refresh_and_a_failing_list_keeps_its_objects(
    fake: FakeApi,
) -> None:
    fake.items[PATHS["deployments"]] = [deployment("d", 2, "1")]
    exporter = KubeStateExporter(fake.client(), interval=3600)  # refreshed by hand below
    exporter.start()
    try:
        got = scrape(exporter.url)
        assert (replicas(got), lists(got, "success"), lists(got, "error")) == (2, 1, 0)

        fake.items[PATHS["deployments"]] = [deployment("d", 5, "2")]
        requests = len(fake.requests)
        assert replicas(scrape(exporter.url)) == 2  # no refresh yet: a scrape never lists
        assert len(fake.requests) == requests

        fake.failing.add(PATHS["deployments"])
        exporter.refresh()
        got = scrape(exporter.url)
        print(f"while failing: {exporter.errors()}")
        assert (replicas(got), lists(got, "success"), lists(got, "error")) == (2, 1, 1)
        assert exporter.errors() == {"deployments": "500 etcd is down"}

        fake.failing.clear()
        exporter.refresh()
        got = scrape(exporter.url)
        assert (replicas(got), lists(got, "success"), lists(got, "error")) == (5, 2, 1)
        assert exporter.errors() == {}
        assert urllib.request.urlopen(exporter.url.replace("/metrics", "/healthz")).read() == b"ok"
    finally:
        exporter.stop()


def test_families_are_rebuilt_only_when_an_object_changed(fake: FakeApi) -> None:
    fake.items[PATHS["deployments"]] = [deployment("d", 2, "1")]
    exporter = KubeStateExporter(fake.client(), interval=3600)
    exporter.refresh()
    first = exporter.collect()
    exporter.refresh()
    assert all(a is b for a, b in zip(exporter.collect()[:-1], first[:-1], strict=True))
    fake.items[PATHS["deployments"]] = [deployment("d", 3, "2")]
    exporter.refresh()
    assert not any(a is b for a, b in zip(exporter.collect()[:-1], first[:-1], strict=True))
