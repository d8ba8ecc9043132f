"""What a local cluster runs outside its pods: the Service proxy, the ingress controller, the
kube-state exporter and the monitoring stack — everything on 127.0.0.1, everything from the API.

- The **Service proxy** (`network.proxy`) serves every Service's ClusterIP (127.96.x.y) and
  forwards to its ready pods, computed from the pods as kube-proxy would from EndpointSlices
  (which may not hold loopback addresses, so the endpoint controllers are off).
- The **ingress controller** renders nginx from the Ingress objects, the controller's settings
  and the same ready endpoints, as ingress-nginx does, and reloads nginx (SIGHUP) when they
  change. nginx is supervised (`supervisor.Supervised`), as are Prometheus, Alertmanager and
  the node exporter (`monitoring.LocalMonitoring`).
- The **kube-state exporter** (`exporters.kube_state`) publishes kube-state-metrics' series,
  and the ingress controller's `/metrics` (`exporters.ingress_nginx`) its request counter, read
  from nginx's access log; Prometheus scrapes both, the pods' metrics ports (found from the
  API) and the kubelets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from finchsim.platform.exporters.kube_state import KubeStateExporter
from finchsim.platform.kubernetes.client import Clients
from finchsim.platform.local.ingress import (
    NGINX_WORKER_USER,
    ControllerSettings,
    plan_servers,
    render_config,
    upstreams_from_endpoints,
)
from finchsim.platform.local.monitoring import LocalMonitoring
from finchsim.platform.local.processes import Proc, spawn
from finchsim.platform.local.supervisor import Supervised
from finchsim.platform.manifests import Rendered
from finchsim.platform.network.endpoints import ready_endpoints
from finchsim.platform.network.proxy import ServiceProxy, is_loopback
from finchsim.platform.network.sources import KubernetesSource
from finchsim.platform.ports import free_port
from finchsim.platform.providers.ingress_metrics import IngressMetricsExporter
from finchsim.platform.secrets import write_private
from finchsim.platform.topology import build_topology
from finchsim.project import Project

CONTROLLER_SETTINGS = "ingress-nginx-controller"  # the ConfigMap ingress-nginx reads
# ingress-nginx's --sync-rate-limit default (cmd/nginx/flags.go): at most 0.3 syncs a second.
SYNC_RATE_LIMIT = 0.3
METRICS_PORT_NAMES = ("metrics", "http")  # a container port Prometheus scrapes /metrics on
NO_METRICS_IMAGES = ("finch-sim/finch-frontend",)  # nginx serving the SPA: no /metrics


def _items(response: Any, kind: str) -> list[dict[str, Any]]:
    """A raw list response's objects, each with its `kind` (list items carry none)."""
    items: list[dict[str, Any]] = json.loads(response.data).get("items") or []
    for item in items:
        item["kind"] = kind
    return items


def scrape_targets(pods: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Prometheus file_sd targets: each scheduled pod's metrics port on its pod IP."""
    targets = []
    for pod in pods:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        ip = (pod.get("status") or {}).get("podIP")
        if not ip or meta.get("deletionTimestamp"):
            continue
        for container in spec.get("containers") or []:
            if str(container.get("image", "")).startswith(NO_METRICS_IMAGES):
                continue
            for port in container.get("ports") or []:
                if port.get("name") not in METRICS_PORT_NAMES:
                    continue
                labels = meta.get("labels") or {}
                targets.append(
                    {
                        "targets": [f"{ip}:{port['containerPort']}"],
                        "labels": {
                            "namespace": meta["namespace"],
                            "pod": meta["name"],
                            "container": container["name"],
                            "job": labels.get("app", labels.get("app.kubernetes.io/name", "")),
                        },
                    }
                )
    return targets


def kubelet_targets(clients: Clients) -> list[dict[str, Any]]:
    """Each node's kubelet endpoint (InternalIP : daemonEndpoints port), for its cAdvisor."""
    targets = []
    for node in clients.core.list_node().items:
        ip = next((a.address for a in node.status.addresses or [] if a.type == "InternalIP"), "")
        port = node.status.daemon_endpoints.kubelet_endpoint.port
        if ip and port and is_loopback(ip):
            targets.append({"targets": [f"{ip}:{port}"], "labels": {"node": node.metadata.name}})
    return targets


class LocalEdge:
    def __init__(
        self,
        project: Project,
        run_dir: Path,
        namespaces: Sequence[str],
        scrape_interval: str,
        log: Callable[[str], None],
        register: Callable[[Proc, str], None],
    ) -> None:
        self.project = project
        self.dir = run_dir / "edge"
        self.namespaces = list(namespaces)
        self.interval = scrape_interval
        self.log = log
        self.register = register
        self.ports = {
            name: free_port()
            for name in ("http", "https", "prometheus", "alertmanager", "node-exporter")
        }
        self.proxy: ServiceProxy | None = None
        self.exporter: KubeStateExporter | None = None
        self.ingress_metrics: IngressMetricsExporter | None = None
        self.ingress_namespace = ""  # the namespace of the Ingresses, at the last render
        self.monitoring: LocalMonitoring | None = None
        self.ingress: Supervised | None = None
        self._rendered = ""
        self._synced = 0.0  # monotonic time of the last sync from the API

    # -- lifecycle -----------------------------------------------------------------------

    def start(self, clients: Clients) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proxy = ServiceProxy(KubernetesSource(clients.core, self.namespaces))
        self.proxy.start()
        self.exporter = KubeStateExporter(clients.api)
        self.exporter.start()
        self._start_ingress(clients)
        self.ingress_metrics = IngressMetricsExporter(
            self.dir / "ingress" / "access.log", self.ingress_namespace
        )
        self.ingress_metrics.start()
        ports = {
            **self.ports,
            "metrics": self.exporter.bound_port,
            "ingress-metrics": self.ingress_metrics.bound_port,
        }
        self.monitoring = LocalMonitoring(
            self.dir, self.project.cluster / "monitoring", ports, self.interval,
            self.register, self.log,
        )  # fmt: skip
        self.monitoring.start()

    def reconcile(self, clients: Clients) -> None:
        """Restart what died; follow the API (ingress config, scrape targets) at most
        `SYNC_RATE_LIMIT` times a second, as ingress-nginx does."""
        if self.monitoring is not None:
            self.monitoring.check()
        if self.ingress is not None:
            self.ingress.check()
        if time.monotonic() - self._synced >= 1.0 / SYNC_RATE_LIMIT:
            self._follow(clients)

    def sync(self, clients: Clients) -> None:
        """Follow the API now, the Service proxy (which resyncs itself every second) too."""
        if self.proxy is not None:
            self.proxy.sync()
        self._follow(clients)

    def _follow(self, clients: Clients) -> None:
        """The ingress configuration (nginx reloads on SIGHUP) and Prometheus' targets."""
        self._synced = time.monotonic()
        services, pods = self._list(clients, "Service"), self._list(clients, "Pod")
        config = self._ingress_config(clients, services, pods)
        if config != self._rendered and self.ingress is not None:
            (self.dir / "ingress" / "nginx.conf").write_text(config)
            self._rendered = config
            if self.ingress.alive():  # a restarted nginx reads the new file anyway
                os.kill(self.ingress.proc.pid, signal.SIGHUP)
        if self.monitoring is not None:
            self.monitoring.write_target_list(scrape_targets(pods))
            self.monitoring.write_target_list(kubelet_targets(clients), "kubelets")

    def stop(self) -> None:
        """Stop everything started; safe after a partial start."""
        if self.ingress is not None:
            self.ingress.stop()
            self.ingress = None
        if self.monitoring is not None:
            self.monitoring.stop()
            self.monitoring = None
        if self.ingress_metrics is not None:
            self.ingress_metrics.stop()
            self.ingress_metrics = None
        if self.exporter is not None:
            self.exporter.stop()
            self.exporter = None
        if self.proxy is not None:
            self.proxy.stop()
            self.proxy = None

    # -- endpoints -------------------------------------------------------------------------

    def ingress_url(self, host: str) -> str:
        return f"https://127.0.0.1:{self.ports['https']}"

    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['prometheus']}"

    # -- the ingress controller ------------------------------------------------------------

    def _list(self, clients: Clients, kind: str) -> list[dict[str, Any]]:
        lister = {
            "Service": clients.core.list_namespaced_service,
            "Pod": clients.core.list_namespaced_pod,
            "ConfigMap": clients.core.list_namespaced_config_map,
            "Secret": clients.core.list_namespaced_secret,
            "Ingress": clients.networking.list_namespaced_ingress,
        }[kind]
        found: list[dict[str, Any]] = []
        for ns in self.namespaces:
            found += _items(lister(ns, _preload_content=False, _request_timeout=10), kind)
        return found

    def _ingress_config(
        self, clients: Clients, services: list[dict[str, Any]], pods: list[dict[str, Any]]
    ) -> str:
        objects = [
            Rendered(obj, f"api: {kind} {obj['metadata']['namespace']}/{obj['metadata']['name']}")
            for kind in ("Ingress", "ConfigMap", "Secret")
            for obj in self._list(clients, kind)
        ]
        topo = build_topology(objects)
        self.ingress_namespace = topo.namespace
        auth_files = {}
        for name, data in topo.config.items():
            if "auth" in data:
                path = self.dir / "ingress" / f"{name}.htpasswd"
                write_private(path, data["auth"], owner=NGINX_WORKER_USER)
                auth_files[name] = str(path)
        endpoints = ready_endpoints(services, pods)
        ingresses = list(topo.ingresses.values())
        servers, rate_limits = plan_servers(ingresses, auth_files, topo.namespace)
        ingress_dir = self.dir / "ingress"
        upstreams = upstreams_from_endpoints(ingresses, services, endpoints, topo.namespace)
        # No packet may leave the machine: an endpoint off loopback is never an upstream.
        upstreams = {k: [e for e in v if is_loopback(e[0])] for k, v in upstreams.items()}
        return render_config(
            servers=servers,
            rate_limits=rate_limits,
            upstreams=upstreams,
            settings=ControllerSettings.from_configmap(topo.config.get(CONTROLLER_SETTINGS, {})),
            http_port=self.ports["http"],
            https_port=self.ports["https"],
            run_dir=ingress_dir,
            cert=ingress_dir / "tls.crt",
            key=ingress_dir / "tls.key",
        )

    def _start_ingress(self, clients: Clients) -> None:
        ingress_dir = self.dir / "ingress"
        ingress_dir.mkdir()
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=finch.example.com",
                "-keyout", str(ingress_dir / "tls.key"), "-out", str(ingress_dir / "tls.crt"),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        (ingress_dir / "tls.key").chmod(0o600)
        services, pods = self._list(clients, "Service"), self._list(clients, "Pod")
        self._rendered = self._ingress_config(clients, services, pods)
        (ingress_dir / "nginx.conf").write_text(self._rendered)
        self.ingress = Supervised(
            "ingress",
            lambda: spawn(
                ["nginx", "-c", str(ingress_dir / "nginx.conf"), "-p", str(ingress_dir)],
                env={"PATH": "/usr/sbin:/usr/bin"},
                cwd=ingress_dir,
                log_path=ingress_dir / "nginx.out",
                death_signal=signal.SIGTERM,  # its workers outlive a SIGKILLed master
            ),
            self.log,
            self.register,
        )
