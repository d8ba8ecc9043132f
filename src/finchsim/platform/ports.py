"""Free TCP ports on the loopback interface, for servers that bind them later.

Taken below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`, 32768-60999 by
default), where port 0 would pick them: an outgoing connection made between our choice and the
server's bind (a client of the API server, say) can take any port of that range, and did
("bind: address already in use" for kube-scheduler's secure port in a CI run). Below it, only
another listener can. kwokctl probes downwards from 32767 for the same reason."""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 10000
RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def _ephemeral_low() -> int:
    try:
        return int(RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port below the ephemeral range that was free on 127.0.0.1 a moment ago.

    Another listener can take it before the caller binds it; callers that start servers treat a
    bind failure as a start failure, they do not retry on the same number."""
    high = max(_ephemeral_low() - 1, LOWEST + 1000)
    for _ in range(200):
        port = random.randint(LOWEST, high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # all taken: any free one
        sock.bind(("127.0.0.1", 0))
        found: int = sock.getsockname()[1]
        return found
