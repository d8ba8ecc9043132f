"""The Service proxy: each Service's ClusterIP:port on loopback, forwarded to a ready endpoint.

What kube-proxy does with iptables/IPVS rules, done in user space for the local platform:
- it listens on every TCP Service port's `clusterIP:port` (127.96.x.y from the API server) while
  the Service has at least one ready endpoint; with none, nothing listens, so a client gets
  "connection refused", as kube-proxy's REJECT rule gives it;
- each connection goes to the next ready endpoint in turn (round robin, IPVS's default), and the
  connection to the pod is made *from the client's own address* (every 127/8 address is local),
  so the pod sees the consumer's pod IP as source, as it would after kube-proxy's DNAT;
- an endpoint that refuses the connection resets the client's (no retry, as with iptables);
- it never binds, nor connects to, an address outside 127.0.0.0/8 (`ProxyError`).

Drills cut or slow one consumer's traffic to one Service (`partition`, `delay`, `heal`):
- `partition(source, service, "reject")`: new connections are reset at once and established
  ones are reset (iptables REJECT --reject-with tcp-reset);
- `partition(source, service, "drop")`: nothing is forwarded either way, new connections hang
  and established ones stall with their data held (iptables DROP: TCP retransmits, so the data
  arrives if the partition heals before the client gives up);
- `delay(source, service, ms)`: the connection to the endpoint and every chunk from the consumer
  are held `ms` (netem on the consumer's egress: a request/response gains `ms`, once).
`source` is an address or a CIDR; `service` is `namespace/name`.

Asyncio rather than threads: one event loop (in one background thread, so callers stay
synchronous) carries every connection and every delayed chunk with a timer instead of a
thread each, which keeps an idle proxy at no CPU and a delay from costing a sleeping thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import itertools
import threading
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from finchsim.errors import PlatformError
from finchsim.platform.network.endpoints import EndpointKey, Frontend
from finchsim.platform.network.relay import pump, reset
from finchsim.platform.network.sources import EndpointSource, Snapshot

Mode = Literal["drop", "reject"]
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
T = TypeVar("T")


class ProxyError(PlatformError):
    """The proxy was asked to do something it must not (a non-loopback address)."""


def require_loopback(ip: str, what: str) -> None:
    """Raise ProxyError unless `ip` is in 127.0.0.0/8."""
    try:
        ok = ipaddress.ip_address(ip) in LOOPBACK
    except ValueError:
        ok = False
    if not ok:
        raise ProxyError(f"refusing {what} {ip}: only 127.0.0.0/8 is allowed")


@dataclass(eq=False)
class _Conn:
    source: str
    key: EndpointKey
    client: asyncio.StreamWriter
    flowing: asyncio.Event = field(default_factory=asyncio.Event)
    upstream: asyncio.StreamWriter | None = None


class ServiceProxy:
    """Serve the Services of `source`, resynced every `resync` seconds. `start()`, `stop()`,
    `collect()`; `sync()` forces a resync now. Thread-safe: every method may be called from any
    thread."""

    def __init__(self, source: EndpointSource, *, resync: float = 1.0) -> None:
        self._source = source
        self._resync = resync
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: dict[tuple[str, int], tuple[EndpointKey, asyncio.AbstractServer]] = {}
        self._endpoints: dict[EndpointKey, list[tuple[str, int]]] = {}
        self._turns: dict[EndpointKey, itertools.count[int]] = {}
        self._conns: set[_Conn] = set()
        self._partitions: dict[tuple[Any, str], Mode] = {}
        self._delays: dict[tuple[Any, str], float] = {}
        self._counts: Counter[tuple[str, str]] = Counter()
        self._errors: dict[str, str] = {}
        self._ticker: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the event loop thread and apply the first snapshot (its errors are raised)."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="service-proxy", daemon=True)
        self._thread.start()
        try:
            self._call(self._apply(self._source.snapshot()))
        except BaseException:
            self.stop()
            raise
        self._ticker = self._call(self._start_ticker())

    def stop(self) -> None:
        """Close every listener and connection and end the loop thread."""
        if self._loop is None:
            return
        with contextlib.suppress(RuntimeError):
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5.0)
        self._loop.close()
        self._loop = None

    def collect(self) -> dict[str, Any]:
        """Listeners, per-Service outcome counts and the last error of each failing listener."""
        return self._call(self._collect())

    def sync(self) -> None:
        """Take a snapshot now and apply it (raises what the source raises)."""
        self._call(self._apply(self._source.snapshot()))

    # -- drills -----------------------------------------------------------------------------

    def partition(self, source_ip: str, service: str, mode: Mode = "reject") -> None:
        """Cut the traffic of `source_ip` (address or CIDR) to `service` (`namespace/name`)."""
        if mode not in ("drop", "reject"):
            raise ValueError(f"mode must be 'drop' or 'reject', got {mode!r}")
        self._call(self._set_partition(_network(source_ip), _service(service), mode))

    def delay(self, source_ip: str, service: str, ms: float) -> None:
        """Hold the traffic of `source_ip` to `service` `ms` milliseconds (0 removes it)."""
        if ms < 0:
            raise ValueError(f"delay must be >= 0 ms, got {ms}")
        self._call(self._set_delay(_network(source_ip), _service(service), ms / 1000.0))

    def heal(self, source_ip: str, service: str) -> None:
        """Remove the partition and the delay of `source_ip` to `service`."""
        self._call(self._set_partition(_network(source_ip), _service(service), None))
        self._call(self._set_delay(_network(source_ip), _service(service), 0.0))

    # -- inside the loop ----------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the proxy is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30.0)

    async def _start_ticker(self) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._resync)
            try:
                snap = await loop.run_in_executor(None, self._source.snapshot)
            except Exception as exc:  # keep serving the last snapshot; the next resync retries
                self._errors["source"] = f"{type(exc).__name__}: {exc}"
                continue
            self._errors.pop("source", None)
            await self._apply(snap)

    async def _apply(self, snap: Snapshot) -> None:
        wanted: dict[tuple[str, int], Frontend] = {}
        endpoints: dict[EndpointKey, list[tuple[str, int]]] = {}
        for front in snap.frontends:
            if front.protocol != "TCP":
                continue
            eps = [ep for ep in snap.endpoints.get(front.key, []) if is_loopback(ep[0])]
            endpoints[front.key] = eps
            if eps:
                wanted[(front.cluster_ip, front.port)] = front
        self._endpoints = endpoints
        for addr in [a for a in self._servers if a not in wanted]:
            self._servers.pop(addr)[1].close()  # established connections carry on
        for addr, front in wanted.items():
            if addr in self._servers:
                continue
            name = f"{front.cluster_ip}:{front.port}"
            try:
                require_loopback(front.cluster_ip, "to listen on")
                server = await asyncio.start_server(
                    functools.partial(self._handle, front.key),
                    host=front.cluster_ip,
                    port=front.port,
                    reuse_address=True,
                )
            except (OSError, ProxyError) as exc:
                self._errors[name] = str(exc)
                continue
            self._errors.pop(name, None)
            self._servers[addr] = (front.key, server)

    async def _collect(self) -> dict[str, Any]:
        return {
            "listening": sorted(f"{ip}:{port}" for ip, port in self._servers),
            "counts": {f"{svc} {what}": n for (svc, what), n in sorted(self._counts.items())},
            "errors": dict(self._errors),
        }

    async def _shutdown(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        for _, server in self._servers.values():
            server.close()
        self._servers.clear()
        for conn in list(self._conns):
            reset(conn.client)
            if conn.upstream is not None:
                reset(conn.upstream)
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await asyncio.get_running_loop().shutdown_default_executor()

    async def _set_partition(self, net: Any, svc: str, mode: Mode | None) -> None:
        if mode is None:
            self._partitions.pop((net, svc), None)
        else:
            self._partitions[(net, svc)] = mode
        for conn in list(self._conns):
            if _svc(conn.key) != svc or ipaddress.ip_address(conn.source) not in net:
                continue
            current = self._mode(conn.source, conn.key)
            if current == "reject":
                reset(conn.client)
                if conn.upstream is not None:
                    reset(conn.upstream)
            elif current == "drop":
                conn.flowing.clear()
            else:
                conn.flowing.set()

    async def _set_delay(self, net: Any, svc: str, seconds: float) -> None:
        if seconds:
            self._delays[(net, svc)] = seconds
        else:
            self._delays.pop((net, svc), None)

    def _mode(self, source: str, key: EndpointKey) -> Mode | None:
        ip, svc = ipaddress.ip_address(source), _svc(key)
        modes = {m for (net, s), m in self._partitions.items() if s == svc and ip in net}
        return "reject" if "reject" in modes else "drop" if modes else None

    def _delay_of(self, source: str, key: EndpointKey) -> float:
        ip, svc = ipaddress.ip_address(source), _svc(key)
        return max((d for (net, s), d in self._delays.items() if s == svc and ip in net), default=0)

    async def _handle(
        self, key: EndpointKey, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        source = writer.get_extra_info("peername")[0]
        conn = _Conn(source, key, writer)
        self._conns.add(conn)
        try:
            await self._serve(conn, reader)
        except asyncio.CancelledError:
            # The loop is stopping. Ending normally matters: Python 3.11's start_server callback
            # calls task.exception(), which raises (and logs a traceback) for a cancelled task.
            pass
        finally:
            self._conns.discard(conn)
            for side in (conn.client, conn.upstream):
                if side is not None and not side.is_closing():
                    side.close()

    async def _serve(self, conn: _Conn, reader: asyncio.StreamReader) -> None:
        svc, mode = _svc(conn.key), self._mode(conn.source, conn.key)
        if mode == "reject":
            self._counts[(svc, "rejected")] += 1
            return reset(conn.client)
        if mode == "drop":
            self._counts[(svc, "dropped")] += 1
        else:
            conn.flowing.set()
        await conn.flowing.wait()
        if delay := self._delay_of(conn.source, conn.key):
            await asyncio.sleep(delay)
        endpoints = self._endpoints.get(conn.key) or []
        if not endpoints:
            self._counts[(svc, "no endpoint")] += 1
            return reset(conn.client)
        turn = next(self._turns.setdefault(conn.key, itertools.count()))
        ip, port = endpoints[turn % len(endpoints)]
        try:
            require_loopback(ip, "to connect to")
            up_reader, conn.upstream = await asyncio.open_connection(
                ip, port, local_addr=(conn.source, 0)
            )
        except (OSError, ProxyError) as exc:
            self._counts[(svc, "endpoint failed")] += 1
            self._errors[f"{svc} {ip}:{port}"] = str(exc)
            return reset(conn.client)
        self._counts[(svc, "forwarded")] += 1
        await asyncio.gather(
            pump(
                reader, conn.upstream, conn.flowing, lambda: self._delay_of(conn.source, conn.key)
            ),
            pump(up_reader, conn.client, conn.flowing),
        )


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in LOOPBACK
    except ValueError:
        return False


def _network(source: str) -> Any:
    return ipaddress.ip_network(source, strict=False)


def _service(service: str) -> str:
    namespace, sep, name = service.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise ValueError(f"service must be 'namespace/name', got {service!r}")
    return service


def _svc(key: EndpointKey) -> str:
    return f"{key[0]}/{key[1]}"
