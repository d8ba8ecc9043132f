"""The Service proxy with real sockets on 127.0.x.y / 127.96.x.y, no cluster: backends are
echo servers that greet with their name and the peer address they see; the snapshot comes from
a `CallableSource` the test changes."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from finchsim.platform.network import CallableSource, Frontend, ServiceProxy, Snapshot
from finchsim.platform.network.proxy import ProxyError, require_loopback
from finchsim.platform.network.sources import KubernetesSource
from tests.integration.network.support import Backend, free_port, greeting

pytestmark = pytest.mark.integration

NS = "finch-production"
SVC = f"{NS}/finch-backend"
OCTET = random.randint(100, 250)  # keeps this run's addresses apart from other runs'
CLUSTER_IP = f"127.96.{OCTET}.10"
CLIENT_A = f"127.0.{OCTET}.20"
CLIENT_B = f"127.0.{OCTET}.21"


class World:
    """The snapshot the proxy reads; tests set `endpoints` and call `proxy.sync()`."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.frontends = [Frontend(NS, "finch-backend", CLUSTER_IP, port)]
        self.endpoints: list[tuple[str, int]] = []

    def snapshot(self) -> Snapshot:
        return Snapshot(tuple(self.frontends), {(NS, "finch-backend", self.port): self.endpoints})


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    servers = [Backend(f"127.0.{OCTET}.5", "pod-a"), Backend(f"127.0.{OCTET}.6", "pod-b")]
    yield servers
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture
def world(backends: list[Backend]) -> Iterator[tuple[World, ServiceProxy]]:
    w = World(free_port(CLUSTER_IP))
    w.endpoints = [b.endpoint for b in backends]
    proxy = ServiceProxy(CallableSource(w.snapshot), resync=3600)  # the tests sync explicitly
    proxy.start()
    yield w, proxy
    proxy.stop()


def connect(port: int, source: str = CLIENT_A, timeout: float = 2.0) -> socket.socket:
    return socket.create_connection((CLUSTER_IP, port), timeout=timeout, source_address=(source, 0))


def echo(sock: socket.socket, text: str) -> str:
    sock.sendall(text.encode())
    return sock.recv(100).decode()


def test_round_robin_from_the_consumers_own_address(world: tuple[World, ServiceProxy]) -> None:
    w, proxy = world
    seen = []
    for _ in range(4):
        with connect(w.port) as s:
            seen.append(greeting(s))
            assert echo(s, "ping") == "ping"
    print("greetings:", seen)
    assert seen == [f"pod-a {CLIENT_A}", f"pod-b {CLIENT_A}"] * 2
    assert proxy.collect()["counts"] == {f"{SVC} forwarded": 4}


def test_no_ready_endpoint_refuses_and_endpoints_are_followed(
    world: tuple[World, ServiceProxy], backends: list[Backend]
) -> None:
    w, proxy = world
    established = connect(w.port)
    assert greeting(established).startswith("pod-a")
    w.endpoints = []
    proxy.sync()
    print("after endpoints left:", proxy.collect())
    with pytest.raises(ConnectionRefusedError):
        connect(w.port)
    assert echo(established, "still") == "still"  # like conntrack: established flows survive
    established.close()
    w.endpoints = [backends[1].endpoint]
    proxy.sync()
    with connect(w.port) as s:
        assert greeting(s) == f"pod-b {CLIENT_A}"


def test_only_loopback_is_bound_or_dialled(world: tuple[World, ServiceProxy]) -> None:
    w, proxy = world
    with pytest.raises(ProxyError, match=r"refusing to listen on 10\.0\.0\.1"):
        require_loopback("10.0.0.1", "to listen on")
    outside = Frontend(NS, "outside", "192.0.2.10", w.port)
    w.frontends.append(outside)
    w.endpoints = [("192.0.2.1", 80)]  # a non-loopback endpoint is never used
    proxy.sync()
    state = proxy.collect()
    print(state)
    assert state["listening"] == []
    w.frontends = [outside]
    w.endpoints = []
    w.port = outside.port
    proxy.sync()
    assert proxy.collect()["listening"] == []


def test_partition_reject_resets_one_consumer_only(world: tuple[World, ServiceProxy]) -> None:
    w, proxy = world
    before = connect(w.port, CLIENT_A)
    greeting(before)
    proxy.partition(CLIENT_A, SVC, "reject")
    with before, pytest.raises(ConnectionError):
        before.sendall(b"x")
        if not before.recv(10):
            raise ConnectionError("closed")
    # the reset may even beat connect() returning
    with pytest.raises(ConnectionError), connect(w.port, CLIENT_A) as s:
        greeting(s)
    with connect(w.port, CLIENT_B) as s:
        assert greeting(s).endswith(CLIENT_B)
    proxy.heal(CLIENT_A, SVC)
    with connect(w.port, CLIENT_A) as s:
        assert greeting(s).endswith(CLIENT_A)
    counts = proxy.collect()["counts"]
    print(counts)
    assert counts[f"{SVC} rejected"] == 1


def test_partition_drop_holds_traffic_until_healed(world: tuple[World, ServiceProxy]) -> None:
    w, proxy = world
    established = connect(w.port, CLIENT_A, timeout=0.5)
    greeting(established)
    proxy.partition(f"127.0.{OCTET}.16/28", SVC, "drop")  # a CIDR holding CLIENT_A, not B
    established.sendall(b"held")
    with pytest.raises(TimeoutError):
        established.recv(10)  # nothing comes back while dropped
    fresh = connect(w.port, CLIENT_A, timeout=0.5)
    with pytest.raises(TimeoutError):
        fresh.recv(10)  # no greeting: the connection never reaches a pod
    with connect(w.port, "127.0.1.99") as s:
        assert greeting(s).startswith("pod-")
    proxy.heal(f"127.0.{OCTET}.16/28", SVC)
    established.settimeout(2.0)
    fresh.settimeout(2.0)
    assert established.recv(10) == b"held"  # held, not lost: TCP would have retransmitted
    assert greeting(fresh).endswith(CLIENT_A)
    established.close()
    fresh.close()


def test_delay_slows_one_consumer(world: tuple[World, ServiceProxy]) -> None:
    w, proxy = world
    proxy.delay(CLIENT_A, SVC, 200)

    def round_trip(source: str) -> tuple[float, float]:
        start = time.monotonic()
        with connect(w.port, source) as s:
            greeting(s)
            setup = time.monotonic() - start
            start = time.monotonic()
            assert echo(s, "ping") == "ping"
            return setup, time.monotonic() - start

    slow, fast = round_trip(CLIENT_A), round_trip(CLIENT_B)
    print(f"delayed consumer: setup {slow[0]:.3f}s echo {slow[1]:.3f}s; other {fast}")
    assert slow[0] >= 0.2 and slow[1] >= 0.2
    assert fast[0] < 0.2 and fast[1] < 0.2
    proxy.delay(CLIENT_A, SVC, 0)
    assert max(round_trip(CLIENT_A)) < 0.2


class _Response:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        import json

        self.data = json.dumps({"items": items}).encode()


class _Core:
    """The two CoreV1Api calls KubernetesSource makes, answering as the API server does."""

    def __init__(self, services: list[dict[str, Any]], pods: list[dict[str, Any]]) -> None:
        self.services, self.pods, self.calls = services, pods, []

    def list_namespaced_service(self, namespace: str, **kwargs: Any) -> _Response:
        self.calls.append(("services", namespace, kwargs.get("_preload_content")))
        return _Response(self.services)

    def list_namespaced_pod(self, namespace: str, **kwargs: Any) -> _Response:
        self.calls.append(("pods", namespace, kwargs.get("_preload_content")))
        return _Response(self.pods)


def test_kubernetes_source_serves_what_the_api_lists(backends: list[Backend]) -> None:
    port = free_port(CLUSTER_IP)
    service = {
        "metadata": {"name": "finch-backend", "namespace": NS},
        "spec": {
            "clusterIP": CLUSTER_IP,
            "selector": {"app": "backend"},
            "ports": [{"port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    pods = [
        {
            "metadata": {"name": f"p{i}", "namespace": NS, "labels": {"app": "backend"}},
            "spec": {
                "containers": [
                    {"name": "app", "ports": [{"name": "http", "containerPort": b.endpoint[1]}]}
                ]
            },
            "status": {
                "phase": "Running",
                "podIP": b.endpoint[0],
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }
        for i, b in enumerate(backends)
    ]
    core = _Core([service], pods)
    proxy = ServiceProxy(KubernetesSource(core, [NS]), resync=3600)
    proxy.start()
    try:
        names = set()
        for _ in range(2):
            with connect(port) as s:
                names.add(greeting(s).split()[0])
        assert names == {"pod-a", "pod-b"}
        assert core.calls == [("services", NS, False), ("pods", NS, False)]
    finally:
        proxy.stop()
