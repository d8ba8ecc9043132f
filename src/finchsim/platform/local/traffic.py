"""What went through the ingress, read from its access log (`$msec $host $status
$request_time $upstream_addr $request_method $finch_route`, flushed every second; the route is
the Ingress, Service and path of the location that answered, `- - -` for unknown hosts).

It feeds the live view (requests, errors and rate-limited requests per second) and the
ingress-nginx metric `nginx_ingress_controller_requests` (a counter by namespace, ingress, host,
service, path, method and status), so queries written against a real ingress-nginx controller
work here. A request the rate limit rejected never reached an upstream (`$upstream_addr` is `-`)."""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path

# Re-exported: the counts are the metric's label sets, declared with the metric.
from finchsim.platform.exporters.ingress_nginx import IngressCount

WINDOW = 10.0  # seconds of single requests kept for the rates


@dataclass(frozen=True)
class Rates:
    requests: float = 0.0  # per second
    errors: float = 0.0  # 5xx from an upstream (or no upstream left), per second
    limited: float = 0.0  # rejected by the rate limit, per second


class IngressTraffic:
    def __init__(self, log_path: Path, namespace: str, limit_status: int) -> None:
        self.path = log_path
        self.namespace = namespace
        self.limit_status = limit_status
        self.offset = 0
        self.partial = ""
        # (ingress, host, service, path, method, status) -> requests
        self.counts: Counter[tuple[str, str, str, str, str, str]] = Counter()
        self.recent: deque[tuple[float, str]] = deque()  # (time, kind: ok | error | limited)

    def read(self) -> None:
        """Take in the lines nginx has flushed since the last read."""
        try:
            with self.path.open("rb") as log:
                log.seek(self.offset)
                data = log.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        text = self.partial + data.decode(errors="replace")
        lines = text.split("\n")
        self.partial = lines.pop()
        for line in lines:
            self._add(line)
        cutoff = time.time() - WINDOW
        while self.recent and self.recent[0][0] < cutoff:
            self.recent.popleft()

    def _add(self, line: str) -> None:
        fields = line.split(" ")
        # $upstream_addr lists every upstream tried ("a:1, b:2" after proxy_next_upstream), so
        # it is whatever lies between the four leading and the four trailing fields.
        if len(fields) < 9 or not fields[2].isdigit():
            return
        at, host, status = float(fields[0]), fields[1], fields[2]
        upstream = " ".join(fields[4:-4])
        method, ingress, service, path = fields[-4:]
        if ingress == "-":
            return  # the catch-all server's 404s for unknown hosts
        self.counts[(ingress, host, service, path, method, status)] += 1
        if upstream == "-" and int(status) == self.limit_status:
            kind = "limited"
        elif status.startswith("5"):
            kind = "error"
        else:
            kind = "ok"
        self.recent.append((at, kind))

    def rates(self, window: float = 5.0) -> Rates:
        since = time.time() - window
        kinds = Counter(kind for at, kind in self.recent if at >= since)
        total = sum(kinds.values())
        return Rates(total / window, kinds["error"] / window, kinds["limited"] / window)

    def totals(self) -> tuple[IngressCount, ...]:
        out = []
        for (ingress, host, service, path, method, status), count in sorted(self.counts.items()):
            out.append(
                IngressCount(self.namespace, ingress, host, service, path, method, status, count)
            )
        return tuple(out)
