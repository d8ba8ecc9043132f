"""`nginx_ingress_controller_requests` as the ingress-nginx controller serves it on /metrics,
for the local platform's nginx (served by `providers.ingress_metrics` from its access log).

Labels as ingress-nginx's socket collector (internal/ingress/metric/collectors/socket.go,
kubernetes/ingress-nginx commit 038b023, search store #4395577174): `requestTags` = status,
method, path, namespace, ingress, service, canary, plus `host` with `--metrics-per-host`
(the controller's default), and the constant labels controller_namespace, controller_class and
controller_pod. `path` is the Ingress path of the location that answered, not the request's
URI, and `status` the exact code (`--report-status-classes` is off by default). A counter
without `_total`, as client_golang names a CounterVec. Only requests that matched an Ingress
are counted: the catch-all server's 404s carry no ingress, and the collector skips hosts it
does not serve. Canary Ingresses are not rendered here, so `canary` is always empty."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.core import Metric

from finchsim.platform.exporters.families import Family, Samples

REQUESTS = Family(
    "nginx_ingress_controller_requests",
    "The total number of client requests",
    (
        "controller_class",
        "controller_namespace",
        "controller_pod",
        "status",
        "method",
        "path",
        "namespace",
        "ingress",
        "service",
        "canary",
        "host",
    ),
    type="counter",
)
FAMILIES = (REQUESTS,)


@dataclass(frozen=True)
class IngressCount:
    """The requests counted for one label set (`local.traffic` counts them from the log)."""

    namespace: str
    ingress: str
    host: str
    service: str
    path: str
    method: str
    status: str
    count: int


@dataclass(frozen=True)
class Controller:
    """The constant labels: who the controller is (the upstream deploy manifests' names)."""

    namespace: str = "ingress-nginx"
    ingress_class: str = "k8s.io/ingress-nginx"
    pod: str = "ingress-nginx-controller-local"


def request_families(counts: Iterable[IngressCount], controller: Controller) -> list[Metric]:
    """The requests counter from the access log's totals (pure)."""
    out = Samples(FAMILIES)
    for c in counts:
        const = (controller.ingress_class, controller.namespace, controller.pod)
        request = (c.status, c.method, c.path, c.namespace, c.ingress, c.service, "", c.host)
        out.add(REQUESTS.name, [*const, *request], c.count)
    return out.metrics()
