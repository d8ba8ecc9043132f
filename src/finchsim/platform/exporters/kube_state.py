"""A kube-state-metrics v2 exporter over the kubernetes client (kube-state-metrics itself cannot
be built here: its module is not served by the Go module proxy).

A background thread lists every resource kind every `interval` seconds (from the API server's
watch cache: resourceVersion=0) and renders the families once; a scrape only hands out the text
of the last complete refresh, so it is cheap and never waits on the API.
A kind whose list fails keeps its previous objects, and the failure is counted in
`kube_state_metrics_list_total{resource, result="error"}` (kube-state-metrics' own telemetry
name). Metric names, label names and values follow kube-state-metrics' `internal/store/*.go`;
see `ksm_pods.py`, `ksm_workloads.py` and `ksm_cluster.py`.

    exporter = KubeStateExporter.from_kubeconfig(path, label_allowlist={"pods": ["app"]})
    exporter.start()            # first refresh done when it returns
    exporter.url                # http://127.0.0.1:<port>/metrics
    exporter.stop()
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from urllib3.exceptions import HTTPError

from finchsim.errors import PlatformError
from finchsim.platform.exporters import ksm_cluster, ksm_pods, ksm_workloads
from finchsim.platform.exporters.families import Family, Obj, Samples
from finchsim.platform.exporters.serving import MetricsEndpoint

FAMILIES: tuple[Family, ...] = (
    *ksm_pods.FAMILIES,
    *ksm_workloads.FAMILIES,
    *ksm_cluster.FAMILIES,
)
# The resource kinds, as kube-state-metrics' --resources names them.
RESOURCES = (
    "pods",
    "deployments",
    "statefulsets",
    "horizontalpodautoscalers",
    "nodes",
    "namespaces",
    "persistentvolumeclaims",
    "resourcequotas",
    "cronjobs",
    "jobs",
)
LIST_TOTAL = "kube_state_metrics_list_total"


@dataclass(frozen=True)
class ClusterObjects:
    """The listed objects (API JSON) per resource kind, and when each list was taken."""

    items: Mapping[str, Sequence[Obj]]
    listed_at: float = 0.0


def families(
    objects: ClusterObjects, label_allowlist: Mapping[str, Sequence[str]] | None = None
) -> list[Metric]:
    """Every kube-state-metrics family the objects imply (pure). `label_allowlist` is
    `--metric-labels-allowlist` as a mapping, e.g. {"pods": ["app"]}."""
    allow = label_allowlist or {}
    out = Samples(FAMILIES)
    items = objects.items
    for pod in items.get("pods", ()):
        ksm_pods.add_pod(pod, out, allow.get("pods", ()))
    for d in items.get("deployments", ()):
        ksm_workloads.add_deployment(d, out, allow.get("deployments", ()))
    for sts in items.get("statefulsets", ()):
        ksm_workloads.add_statefulset(sts, out)
    for hpa in items.get("horizontalpodautoscalers", ()):
        ksm_workloads.add_hpa(hpa, out)
    for adder, kind in (
        (ksm_cluster.add_node, "nodes"),
        (ksm_cluster.add_namespace, "namespaces"),
        (ksm_cluster.add_pvc, "persistentvolumeclaims"),
        (ksm_cluster.add_resourcequota, "resourcequotas"),
        (ksm_cluster.add_cronjob, "cronjobs"),
        (ksm_cluster.add_job, "jobs"),
    ):
        for obj in items.get(kind, ()):
            adder(obj, out)
    return out.metrics()


def label_allowlist_of(deployment: Path) -> dict[str, list[str]]:
    """`--metric-labels-allowlist` of the kube-state-metrics Deployment manifest, as
    {"pods": ["app"], ...}, so the exporter labels what the cluster's exporter would."""
    allow: dict[str, list[str]] = {}
    for doc in yaml.safe_load_all(deployment.read_text()):
        if not doc or doc.get("kind") != "Deployment":
            continue
        for container in doc["spec"]["template"]["spec"]["containers"]:
            for arg in container.get("args") or []:
                if arg.startswith("--metric-labels-allowlist="):
                    value = arg.split("=", 1)[1]
                    for part in _split_allowlist(value):
                        kind, _, labels = part.partition("=")
                        allow[kind] = [x for x in labels.strip("[]").split(",") if x]
    return allow


def _split_allowlist(value: str) -> Iterator[str]:
    """Split `pods=[app,tier],deployments=[app]` at the commas outside brackets."""
    depth, start = 0, 0
    for i, ch in enumerate(value):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            yield value[start:i]
            start = i + 1
    if value[start:]:
        yield value[start:]


def _listers(api: client.ApiClient) -> dict[str, Callable[..., Any]]:
    core, apps, batch = client.CoreV1Api(api), client.AppsV1Api(api), client.BatchV1Api(api)
    autoscaling = client.AutoscalingV2Api(api)
    return {
        "pods": core.list_pod_for_all_namespaces,
        "deployments": apps.list_deployment_for_all_namespaces,
        "statefulsets": apps.list_stateful_set_for_all_namespaces,
        "horizontalpodautoscalers": (autoscaling.list_horizontal_pod_autoscaler_for_all_namespaces),
        "nodes": core.list_node,
        "namespaces": core.list_namespace,
        "persistentvolumeclaims": core.list_persistent_volume_claim_for_all_namespaces,
        "resourcequotas": core.list_resource_quota_for_all_namespaces,
        "cronjobs": batch.list_cron_job_for_all_namespaces,
        "jobs": batch.list_job_for_all_namespaces,
    }


@dataclass
class _State:
    objects: ClusterObjects = field(default_factory=lambda: ClusterObjects({}))
    metrics: list[Metric] = field(default_factory=list)
    lists: dict[tuple[str, str], int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    exposition: bytes = b""
    rendered: bytes = b""  # the families' text alone, reused while no object changed
    versions: tuple[tuple[str, str], ...] = ()


class _Fixed(Collector):
    def __init__(self, metrics: Iterable[Metric]) -> None:
        self.metrics = list(metrics)

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


def _list_counter(lists: Mapping[tuple[str, str], int]) -> Metric:
    total = CounterMetricFamily(
        LIST_TOTAL,
        "Number of total resource list in kube-state-metrics",
        labels=["resource", "result"],
    )
    for (resource, result), count in sorted(lists.items()):
        total.add_metric([resource, result], count)
    return total


def render(metrics: Iterable[Metric]) -> bytes:
    """The Prometheus text exposition of `metrics`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(metrics))
    return generate_latest(registry)


def _reason(exc: Exception) -> str:
    """One line on why a list failed: the API server's message when it sent one."""
    if isinstance(exc, ApiException):
        try:
            message = json.loads(exc.body or "{}").get("message")
        except (ValueError, AttributeError):
            message = None
        return f"{exc.status} {message or exc.reason}"
    return (str(exc).strip().splitlines() or [repr(exc)])[0]


class KubeStateExporter:
    """kube-state-metrics' series for one cluster, served on 127.0.0.1 (see the module
    docstring). `start()` / `stop()` / `collect()` like the other long-running observers."""

    def __init__(
        self,
        api: client.ApiClient,
        *,
        interval: float = 5.0,
        port: int = 0,
        label_allowlist: Mapping[str, Sequence[str]] | None = None,
        request_timeout: float = 10.0,
    ) -> None:
        self._api = api
        self._owns_api = False
        self._listers = _listers(api)
        self.interval = interval
        self.port = port
        self.label_allowlist = dict(label_allowlist or {})
        self.request_timeout = request_timeout
        self._state = _State()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._server = MetricsEndpoint(self._exposition, "kube-state", port)

    @classmethod
    def from_kubeconfig(
        cls, kubeconfig: Path, context: str | None = None, **options: Any
    ) -> KubeStateExporter:
        """An exporter with its own API client for `context` of `kubeconfig`."""
        try:
            api = config.new_client_from_config(str(kubeconfig), context=context)
        except (config.ConfigException, OSError) as exc:
            raise PlatformError(f"cannot use kubeconfig {kubeconfig}: {exc}") from exc
        exporter = cls(api, **options)
        exporter._owns_api = True
        return exporter

    @property
    def bound_port(self) -> int:
        return self._server.bound_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.bound_port}/metrics"

    def start(self) -> None:
        """Do one refresh (so the first scrape already has every kind), then keep refreshing
        in a daemon thread and serve on 127.0.0.1:`port` (0: a free port)."""
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kube-state-exporter", daemon=True)
        self._thread.start()
        self._server.start()

    def _exposition(self) -> bytes:
        """/metrics (any path but /healthz): the text rendered at the last refresh."""
        with self._lock:
            return self._state.exposition

    def stop(self) -> None:
        self._stop.set()
        self._server.stop()
        if self._thread is not None:
            self._thread.join(timeout=self.request_timeout + self.interval)
            self._thread = None
        if self._owns_api:
            self._api.close()

    def collect(self) -> list[Metric]:
        """The families of the last refresh, plus the list counters (what a scrape gets)."""
        with self._lock:
            state = self._state
        return [*state.metrics, _list_counter(state.lists)]

    def errors(self) -> dict[str, str]:
        """The last list error per resource kind that is failing now."""
        with self._lock:
            return dict(self._state.errors)

    def refresh(self) -> None:
        """List every kind once and rebuild the families (kinds that fail keep their objects)."""
        with self._lock:
            previous = self._state
        items: dict[str, Sequence[Obj]] = {}
        lists = dict(previous.lists)
        errors: dict[str, str] = {}
        for resource, lister in self._listers.items():
            try:
                response = lister(
                    resource_version="0",
                    _preload_content=False,
                    _request_timeout=self.request_timeout,
                )
                items[resource] = json.loads(response.data)["items"]
                result = "success"
            except (ApiException, HTTPError, OSError, ValueError, KeyError) as exc:
                items[resource] = previous.objects.items.get(resource, ())
                errors[resource] = _reason(exc)
                result = "error"
            lists[(resource, result)] = lists.get((resource, result), 0) + 1
        objects = ClusterObjects(items, time.time())
        versions = tuple(
            (str(meta.get("uid", "")), str(meta.get("resourceVersion", "")))
            for kind in RESOURCES
            for meta in (obj.get("metadata") or {} for obj in items.get(kind, ()))
        )
        if previous.rendered and versions == previous.versions:
            metrics, rendered = previous.metrics, previous.rendered
        else:
            metrics = families(objects, self.label_allowlist)
            rendered = render(metrics)
        # Rendered once per change, so a scrape only copies bytes out.
        exposition = rendered + render([_list_counter(lists)])
        state = _State(objects, metrics, lists, errors, exposition, rendered, versions)
        with self._lock:
            self._state = state

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception as exc:  # keep serving the last families rather than dying
                with self._lock:
                    self._state.errors["refresh"] = repr(exc)
