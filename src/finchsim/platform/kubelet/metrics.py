"""The kubelet's `/metrics/resource` endpoint (also `/metrics/cadvisor`, see cadvisor.py, and
`/metrics`, see volumes.py), as metrics-server 0.8 scrapes it: Prometheus text with
millisecond timestamps, per node and per container (the names of
pkg/kubelet/metrics/collectors/resource_metrics.go). Usage is measured: the container's cgroup
where it has one, else its process tree from /proc. One TLS server per node, on the node's
InternalIP."""

from __future__ import annotations

import contextlib
import http.server
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from finchsim.platform.kubelet import cadvisor, logs
from finchsim.platform.kubelet.container import ContainerRun
from finchsim.platform.local.processes import children_map


@dataclass(frozen=True)
class ContainerUsage:
    namespace: str
    pod: str
    container: str
    cpu_seconds: float
    working_set: int
    started: float


def measure(
    namespace: str, pod: str, run: ContainerRun, kids: dict[int, list[int]]
) -> ContainerUsage | None:
    proc = run.proc
    if proc is None:
        return None
    cpu, memory = 0.0, 0
    if run.cgroup is not None:
        with contextlib.suppress(OSError, ValueError):
            stats = run.cgroup.stats()
            cpu, memory = stats.cpu_usage_seconds, stats.working_set_bytes
    if cpu == 0.0 and memory == 0:
        usage = proc.sample(kids)
        cpu, memory = usage.cpu_seconds, usage.working_set_bytes
    return ContainerUsage(namespace, pod, run.spec.name, cpu, memory, run.started_wall)


HEADER = {
    "container_cpu_usage_seconds_total": (
        "counter",
        "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
    ),
    "container_memory_working_set_bytes": (
        "gauge",
        "[STABLE] Current working set of the container in bytes",
    ),
    "container_start_time_seconds": (
        "gauge",
        "[STABLE] Start time of the container since unix epoch in seconds",
    ),
    "node_cpu_usage_seconds_total": (
        "counter",
        "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
    ),
    "node_memory_working_set_bytes": ("gauge", "[STABLE] Current working set of the node in bytes"),
}


def render(usages: list[ContainerUsage], now: float, overhead: tuple[float, int]) -> str:
    """The exposition text for one node's containers. The node's own usage is its containers'
    plus `overhead` (cpu seconds, bytes): its share of the kubelet itself, as a node's usage
    includes its system daemons (metrics-server drops a node whose usage never moves)."""
    ms = int(now * 1000)
    lines: list[str] = []

    def family(name: str, rows: list[tuple[str, float]]) -> None:
        kind, help_text = HEADER[name]
        lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"])
        lines.extend(f"{name}{labels} {value:.9g} {ms}" for labels, value in rows)

    def labels(u: ContainerUsage) -> str:
        return f'{{container="{u.container}",namespace="{u.namespace}",pod="{u.pod}"}}'

    family("container_cpu_usage_seconds_total", [(labels(u), u.cpu_seconds) for u in usages])
    family("container_memory_working_set_bytes", [(labels(u), u.working_set) for u in usages])
    family("container_start_time_seconds", [(labels(u), u.started) for u in usages])
    cpu, memory = overhead
    family("node_cpu_usage_seconds_total", [("", cpu + sum(u.cpu_seconds for u in usages))])
    family("node_memory_working_set_bytes", [("", memory + sum(u.working_set for u in usages))])
    lines.append(
        "# HELP scrape_error 1 if there was an error while getting container metrics, 0 otherwise"
    )
    lines.append("# TYPE scrape_error gauge")
    lines.append("scrape_error 0")
    return "\n".join(lines) + "\n"


def node_usages(runs: list[tuple[str, str, ContainerRun]]) -> list[ContainerUsage]:
    kids = children_map()
    out = []
    for namespace, pod, run in runs:
        usage = measure(namespace, pod, run, kids)
        if usage is not None:
            out.append(usage)
    return out


class MetricsServer:
    """`/metrics/resource`, `/metrics/cadvisor`, `/metrics` (`volumes()`: the volume stats
    text) and `/healthz` over TLS on one address; `port` is the bound one."""

    def __init__(
        self,
        host: str,
        context: ssl.SSLContext,
        source: Callable[[], list[tuple[str, str, ContainerRun]]],
        share: int = 1,
        volumes: Callable[[], bytes] = lambda: b"",
        log_file: logs.LogFile = lambda _ns, _pod, _container: None,
    ) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if (request := logs.parse(self.path)) is not None:
                    self._logs(*request)
                    return
                if self.path.split("?")[0] == "/metrics/resource":
                    body = render(
                        node_usages(outer.source()), time.time(), outer.overhead()
                    ).encode()
                    kind = "text/plain; version=0.0.4"
                elif self.path.split("?")[0] == "/metrics/cadvisor":
                    body = cadvisor.render(outer.source()).encode()
                    kind = "text/plain; version=0.0.4"
                elif self.path.split("?")[0] == "/metrics":
                    body, kind = outer.volumes(), "text/plain; version=0.0.4"
                elif self.path == "/healthz":
                    body, kind = b"ok", "text/plain"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _logs(self, target: tuple[str, str, str], query: dict[str, str]) -> None:
                log = outer.log_file(*target)
                if log is None or not log.exists():
                    self.send_error(404, f"container {'/'.join(target)} not found")
                    return
                if query.get("previous") == "true":
                    self.send_error(400, f"previous terminated container {target[2]} not found")
                    return
                data = log.read_bytes()
                try:
                    body = logs.select(data, query)
                except ValueError:
                    self.send_error(400, "tailLines and limitBytes must be integers")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()  # no length: the body ends when the connection closes
                self.wfile.write(body)
                if query.get("follow") == "true":
                    with contextlib.suppress(OSError):  # the client left
                        logs.stream(
                            log, len(data), self.wfile, lambda: outer.log_file(*target) is not None
                        )

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.source = source
        self.share = share
        self.volumes = volumes
        self.log_file = log_file
        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port: int = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name=f"kubelet-metrics-{host}", daemon=True
        )

    def overhead(self) -> tuple[float, int]:
        """This node's share of the kubelet process's CPU seconds and resident memory."""
        me = psutil.Process()
        with me.oneshot():
            t, rss = me.cpu_times(), me.memory_info().rss
        return (t.user + t.system) / self.share, rss // self.share

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
