"""Loopback addresses for nodes and pods: 127.0.0.0/8 is all loopback on Linux, so every node
and every pod gets an address of its own and no packet can leave the machine.

Nodes: 127.0.10.<n+1> (their InternalIP, where the kubelet endpoint listens). Pods:
127.100.0.1 upwards, never reused while the kubelet runs (a restarted pod gets a new address, as
with a CNI). Services are the API server's: `--service-cluster-ip-range=127.96.0.0/16`."""

from __future__ import annotations

import ipaddress
import threading

NODE_BASE = ipaddress.IPv4Address("127.0.10.1")
POD_BASE = ipaddress.IPv4Address("127.100.0.1")
POD_LAST = ipaddress.IPv4Address("127.100.255.254")
SERVICE_RANGE = "127.96.0.0/16"


def node_ip(index: int) -> str:
    """The InternalIP of the `index`-th virtual node."""
    return str(NODE_BASE + index)


class PodIPs:
    """Hands out pod addresses; thread-safe."""

    def __init__(self) -> None:
        self._next = POD_BASE
        self._lock = threading.Lock()

    def allocate(self) -> str:
        with self._lock:
            if self._next > POD_LAST:
                self._next = POD_BASE
            ip = self._next
            self._next += 1
            if ipaddress.IPv4Address(ip).packed[-1] in (0, 255):
                ip = self._next
                self._next += 1
            assert ip.is_loopback
            return str(ip)
