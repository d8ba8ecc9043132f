"""Ports for servers that bind later come from below the kernel's ephemeral range, where no
outgoing connection can take them in the meantime."""

from __future__ import annotations

import socket

from finchsim.platform.ports import LOWEST, RANGE_FILE, free_port


def test_free_ports_are_below_the_ephemeral_range_and_bindable() -> None:
    low = int(RANGE_FILE.read_text().split()[0])
    ports = {free_port() for _ in range(50)}
    assert all(LOWEST <= p < low for p in ports), sorted(ports)
    assert len(ports) > 40  # random, not one number handed out again and again
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.pop()))
