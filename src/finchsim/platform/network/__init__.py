"""The local platform's Service networking: ready endpoints from pods, and the Service proxy."""

from finchsim.platform.network.endpoints import Frontend, frontends, ready_endpoints
from finchsim.platform.network.proxy import ProxyError, ServiceProxy
from finchsim.platform.network.sources import (
    CallableSource,
    EndpointSource,
    KubernetesSource,
    Snapshot,
)

__all__ = [
    "CallableSource",
    "EndpointSource",
    "Frontend",
    "KubernetesSource",
    "ProxyError",
    "ServiceProxy",
    "Snapshot",
    "frontends",
    "ready_endpoints",
]
