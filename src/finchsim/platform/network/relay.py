"""Copying one direction of a proxied TCP connection, and resetting one."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable

_CHUNK = 65536


async def pump(
    src: asyncio.StreamReader,
    dst: asyncio.StreamWriter,
    gate: asyncio.Event,
    delay: Callable[[], float] = lambda: 0.0,
) -> None:
    """Copy `src` to `dst` until EOF, then half-close `dst`. Each chunk is held `delay()`
    seconds after it was read (a latency, not a throughput cut: later chunks are read
    meanwhile, up to 64 in flight) and while `gate` is clear (data held, not lost). A write
    error resets `dst`."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=64)

    async def read() -> None:
        while True:
            try:
                data = await src.read(_CHUNK)
            except OSError:
                data = b""
            await queue.put((loop.time() + delay(), data))
            if not data:
                return

    async def write() -> None:
        while True:
            due, data = await queue.get()
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            await gate.wait()
            try:
                if not data:
                    if dst.can_write_eof() and not dst.is_closing():
                        dst.write_eof()
                    return
                dst.write(data)
                await dst.drain()
            except OSError:
                reset(dst)
                return

    await asyncio.gather(read(), write())


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a REJECT --reject-with tcp-reset would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
