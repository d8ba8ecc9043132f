"""Real loopback servers for the network tests: echo backends that say who they are."""

from __future__ import annotations

import socket
import socketserver
import threading
from typing import Any


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: Any = self.server
        self.request.sendall(f"{server.name} {self.client_address[0]}\n".encode())
        try:
            while data := self.request.recv(4096):
                self.request.sendall(data)
        except ConnectionResetError:
            pass  # the proxy reset the connection: what a partition with reject does


class Backend(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, ip: str, name: str) -> None:
        super().__init__((ip, 0), _Echo)
        self.name = name
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def endpoint(self) -> tuple[str, int]:
        host, port = self.server_address[:2]
        return (str(host), int(port))


def free_port(ip: str) -> int:
    with socket.socket() as s:
        s.bind((ip, 0))
        return int(s.getsockname()[1])


def greeting(sock: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(100)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    return data.decode().strip()
