"""Where the Service proxy learns Services and their ready endpoints: a small interface.

`EndpointSource.snapshot()` returns every Service port to serve and its ready endpoints. Two
sources exist: `CallableSource` (the platform, or a test, supplies the snapshot) and
`KubernetesSource` (lists Services and Pods from the API server and computes the endpoints with
`finchsim.platform.network.endpoints`, since EndpointSlices cannot hold loopback addresses).

`KubernetesSource` lists rather than watches: the proxy resyncs every second, and one list of the
Services and Pods of a few namespaces as raw JSON (`_preload_content=False`, no model
deserialisation) costs a few milliseconds at Finch's size (tens of pods); a watch would save that
at the price of reconnect and resourceVersion bookkeeping, worth it only at hundreds of pods.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from finchsim.platform.network.endpoints import (
    Endpoints,
    Frontend,
    frontends,
    ready_endpoints,
)


@dataclass(frozen=True)
class Snapshot:
    """What the proxy serves: the Service ports, and each one's ready endpoints."""

    frontends: tuple[Frontend, ...] = ()
    endpoints: Endpoints = field(default_factory=dict)

    @classmethod
    def from_objects(cls, services: Sequence[Any], pods: Sequence[Any]) -> Snapshot:
        """From Service and Pod objects (raw JSON dicts or the kubernetes client's models)."""
        return cls(tuple(frontends(services)), ready_endpoints(services, pods))


class EndpointSource(Protocol):
    def snapshot(self) -> Snapshot:
        """The current Services and ready endpoints. May block (network I/O); raising keeps the
        proxy on its previous snapshot until the next resync."""
        ...


class CallableSource:
    """A snapshot from a function the caller supplies (the platform's own view, or a test's)."""

    def __init__(self, fn: Callable[[], Snapshot]) -> None:
        self._fn = fn

    def snapshot(self) -> Snapshot:
        return self._fn()


class CoreApi(Protocol):
    """The part of kubernetes.client.CoreV1Api used here (`Clients.core` is one)."""

    def list_namespaced_service(self, namespace: str, **kwargs: Any) -> Any: ...
    def list_namespaced_pod(self, namespace: str, **kwargs: Any) -> Any: ...


class KubernetesSource:
    """Services and Pods of `namespaces` from the API server, listed on each snapshot."""

    def __init__(self, core: CoreApi, namespaces: Sequence[str], timeout: float = 5.0) -> None:
        self._core = core
        self._namespaces = list(namespaces)
        self._timeout = timeout

    def snapshot(self) -> Snapshot:
        services: list[Any] = []
        pods: list[Any] = []
        for ns in self._namespaces:
            services += self._items(self._core.list_namespaced_service(ns, **self._raw()))
            pods += self._items(self._core.list_namespaced_pod(ns, **self._raw()))
        return Snapshot.from_objects(services, pods)

    def _raw(self) -> dict[str, Any]:
        return {"_preload_content": False, "_request_timeout": self._timeout}

    @staticmethod
    def _items(response: Any) -> list[Any]:
        items: list[Any] = json.loads(response.data).get("items") or []
        return items
