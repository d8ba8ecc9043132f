"""The kubelet's `/containerLogs/{namespace}/{pod}/{container}`: what `kubectl logs` reaches
through the API server (which proxies `pods/log` to the node's InternalIP and kubelet port from
`status.daemonEndpoints`).

Served from the container's log file in its pod directory. Of the query (PodLogOptions):
`tailLines`, `limitBytes`, `timestamps` (each line prefixed with the time it is served, not
written: the file keeps none), and `follow` (new output streamed until the container's pod is
gone or the client leaves). `previous` is refused as a kubelet refuses it when no earlier
container exists: the file holds every run of the container, one after the other."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from io import BufferedIOBase
from pathlib import Path

FOLLOW_POLL_S = 0.5
LogFile = Callable[[str, str, str], Path | None]  # (namespace, pod, container) -> its log


def parse(path: str) -> tuple[tuple[str, str, str], dict[str, str]] | None:
    """(namespace, pod, container) and the query of a containerLogs request, or None."""
    url = urllib.parse.urlsplit(path)
    parts = url.path.strip("/").split("/")
    if len(parts) != 4 or parts[0] != "containerLogs":
        return None
    query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
    return (parts[1], parts[2], parts[3]), query


def select(data: bytes, query: dict[str, str]) -> bytes:
    """`tailLines`, then `limitBytes`, then `timestamps`, as PodLogOptions define them."""
    if "tailLines" in query:
        n = max(0, int(query["tailLines"]))
        lines = data.splitlines(keepends=True)
        data = b"".join(lines[-n:]) if n else b""
    if "limitBytes" in query:
        data = data[: max(0, int(query["limitBytes"]))]
    if query.get("timestamps") == "true":
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z ", time.gmtime()).encode()
        data = b"".join(stamp + line for line in data.splitlines(keepends=True))
    return data


def stream(log: Path, start: int, out: BufferedIOBase, alive: Callable[[], bool]) -> None:
    """`follow`: what is appended to `log` from `start`, until `alive()` turns false."""
    offset = start
    while alive():
        with log.open("rb") as fh:
            fh.seek(offset)
            chunk = fh.read()
        if chunk:
            out.write(chunk)
            out.flush()
            offset += len(chunk)
        time.sleep(FOLLOW_POLL_S)
