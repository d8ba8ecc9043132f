"""Probe attempts against a pod's own address, run off the sync loop in a small thread pool (an
HTTP probe may take its whole timeout). HTTP 200-399 is success, as the kubelet judges it;
a failure says why, in the kubelet's words;
exec probes cannot run the image's binaries here and are checked as TCP connects to the
container's first port."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor

from finchsim.platform.podspec import Container, Probe


def attempt(kind: str, host: str, port: int, path: str, timeout: float) -> str:
    """ "" when the probe passes, else why it failed, worded as the kubelet's probers word it
    (pkg/probe/http/http.go, pkg/probe/tcp/tcp.go), for the Unhealthy Event."""
    address = f"{host}:{port}"
    url = f"http://{address}{path}"
    try:
        if kind == "http":
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                status: int = resp.status
        else:
            with socket.create_connection((host, port), timeout=timeout):
                return ""
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, urllib.error.URLError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError | socket.timeout):
            why = f"dial tcp {address}: i/o timeout"
            if kind == "http":
                return f'Get "{url}": context deadline exceeded (Client.Timeout exceeded)'
        elif isinstance(reason, ConnectionRefusedError):
            why = f"dial tcp {address}: connect: connection refused"
        else:
            why = f"dial tcp {address}: {reason}"
        return f'Get "{url}": {why}' if kind == "http" else why
    return "" if 200 <= status < 400 else f"HTTP probe failed with statuscode: {status}"


def target(container: Container, probe: Probe) -> tuple[str, int, str]:
    if probe.kind == "httpGet":
        return "http", container.port(probe.port), probe.path
    if probe.kind == "tcpSocket":
        return "tcp", container.port(probe.port), ""
    return "tcp", next(iter(container.ports.values()), 0), ""


class ProbePool:
    def __init__(self, workers: int = 4) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe")

    def submit(self, host: str, container: Container, probe: Probe) -> Future[str]:
        kind, port, path = target(container, probe)
        return self.pool.submit(attempt, kind, host, port, path, probe.timeout)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
