"""Probe attempts against a pod's own address, run off the sync loop in a small thread pool (an
HTTP probe may take its whole timeout). HTTP 200-399 is success, as the kubelet judges it;
exec probes cannot run the image's binaries here and are checked as TCP connects to the
container's first port."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor

from finchsim.platform.podspec import Container, Probe


def attempt(kind: str, host: str, port: int, path: str, timeout: float) -> bool:
    try:
        if kind == "http":
            with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=timeout) as resp:
                status: int = resp.status
                return 200 <= status < 400
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except urllib.error.HTTPError as exc:
        return 200 <= exc.code < 400
    except (OSError, urllib.error.URLError, ValueError):
        return False


def target(container: Container, probe: Probe) -> tuple[str, int, str]:
    if probe.kind == "httpGet":
        return "http", container.port(probe.port), probe.path
    if probe.kind == "tcpSocket":
        return "tcp", container.port(probe.port), ""
    return "tcp", next(iter(container.ports.values()), 0), ""


class ProbePool:
    def __init__(self, workers: int = 4) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe")

    def submit(self, host: str, container: Container, probe: Probe) -> Future[bool]:
        kind, port, path = target(container, probe)
        return self.pool.submit(attempt, kind, host, port, path, probe.timeout)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
