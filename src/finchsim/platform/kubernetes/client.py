"""The kubernetes client APIs for one cluster, made from a kubeconfig without global state."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from finchsim.errors import PlatformError


@dataclass
class Clients:
    """Every API group the platform uses, sharing one connection pool."""

    api: client.ApiClient
    core: client.CoreV1Api
    apps: client.AppsV1Api
    batch: client.BatchV1Api
    autoscaling: client.AutoscalingV2Api
    policy: client.PolicyV1Api
    events: client.EventsV1Api
    coordination: client.CoordinationV1Api
    storage: client.StorageV1Api
    networking: client.NetworkingV1Api
    custom: client.CustomObjectsApi
    kubeconfig: Path
    context: str | None
    discovery_cache: Path
    _dynamic: DynamicClient | None = None

    @classmethod
    def connect(
        cls, kubeconfig: Path, discovery_cache: Path, context: str | None = None
    ) -> Clients:
        """Clients for `context` of `kubeconfig` (its current context when None). The dynamic
        client's discovery cache goes to `discovery_cache` (its default is a shared file in
        /tmp that would outlive the run)."""
        try:
            api = config.new_client_from_config(str(kubeconfig), context=context)
        except (config.ConfigException, OSError) as exc:
            raise PlatformError(f"cannot use kubeconfig {kubeconfig}: {exc}") from exc
        # Drills issue many small requests in bursts; the default pool of 4 makes them queue.
        api.rest_client.pool_manager.connection_pool_kw["maxsize"] = 16
        return cls(
            api=api,
            core=client.CoreV1Api(api),
            apps=client.AppsV1Api(api),
            batch=client.BatchV1Api(api),
            autoscaling=client.AutoscalingV2Api(api),
            policy=client.PolicyV1Api(api),
            events=client.EventsV1Api(api),
            coordination=client.CoordinationV1Api(api),
            storage=client.StorageV1Api(api),
            networking=client.NetworkingV1Api(api),
            custom=client.CustomObjectsApi(api),
            kubeconfig=kubeconfig,
            context=context,
            discovery_cache=discovery_cache,
        )

    @property
    def dynamic(self) -> DynamicClient:
        """The dynamic client (discovery on first use), for applying arbitrary kinds."""
        if self._dynamic is None:
            self._dynamic = DynamicClient(self.api, cache_file=str(self.discovery_cache))
        return self._dynamic

    def close(self) -> None:
        self.api.close()


def api_message(exc: ApiException) -> str:
    """The API server's own message from an error response, else the HTTP reason."""
    import json

    try:
        body: Any = json.loads(exc.body or "{}")
    except ValueError:
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or f"{exc.status} {exc.reason}")
