"""Bookkeeping for finch_locustfile.py: the request budget, status counts and the run summary.

Imported only inside the Locust process (it uses gevent), never by finchsim or pytest."""

from __future__ import annotations

import ipaddress
import itertools
import re
import signal
from collections import Counter, defaultdict
from typing import Any
from urllib.parse import urlsplit

import gevent
from locust.env import Environment

MAX_AGE = re.compile(r"max-age=(\d+)")


class RunState:
    """Shared by every user of this Locust process.

    The budget is taken *before* a request is sent, and the runner is told to quit only when
    no request is in flight, so Locust's totals equal what the server received: exactly
    `maxRequests` when the cap ends the run."""

    def __init__(self, max_requests: int, rate_limit_statuses: tuple[int, ...]) -> None:
        self.left = max_requests
        self.rate_limit_statuses = rate_limit_statuses
        self.in_flight = 0
        self.stop_reason = ""
        self.quitting = False
        self.status: defaultdict[str, Counter[int]] = defaultdict(Counter)
        self.client_ips: set[str] = set()
        self.users_started = 0
        self._indexes = itertools.count()
        self.environment: Environment | None = None  # set by the locustfile's init listener

    def new_user_index(self) -> int:
        return next(self._indexes)

    def user_started(self, client_ip: str) -> None:
        self.users_started += 1
        self.client_ips.add(client_ip)

    def acquire(self, environment: Environment) -> bool:
        """Take one request from the budget; False once it is spent."""
        if self.left <= 0:
            self._quit_when_idle(environment)
            return False
        self.left -= 1
        self.in_flight += 1
        return True

    def release(self, environment: Environment) -> None:
        self.in_flight -= 1
        if self.left <= 0:
            self._quit_when_idle(environment)

    def record(self, name: str, status: int) -> None:
        self.status[name][status] += 1

    def note_stop(self, reason: str) -> None:
        self.stop_reason = self.stop_reason or reason

    def stop_on_sigterm(self, environment: Environment) -> None:
        """Make SIGTERM end the test cleanly (users finish their request, reports are
        written, exit 0). Locust installs its own handler only after a shape has finished,
        so without this a SIGTERM during the run kills it without reports."""

        def stop() -> None:
            self.note_stop("stopped from outside")
            if environment.runner is not None:
                environment.runner.quit()

        gevent.signal_handler(signal.SIGTERM, lambda: gevent.spawn(stop))

    def _quit_when_idle(self, environment: Environment) -> None:
        if self.in_flight > 0 or self.quitting or environment.runner is None:
            return
        self.quitting = True
        self.note_stop("maxRequests reached")
        # From a fresh greenlet: quit() kills every user greenlet, possibly the caller's.
        gevent.spawn(environment.runner.quit)

    def summary(self, profile: str, exit_code: int) -> dict[str, Any]:
        """What Locust's own reports lack: status codes, rate limiting, clients, stop reason."""
        totals: Counter[int] = Counter()
        for counts in self.status.values():
            totals.update(counts)
        limited = {s: n for s, n in totals.items() if s in self.rate_limit_statuses}
        runner = self.environment.runner if self.environment is not None else None
        # Exceptions raised in tasks (locustfile bugs): Locust logs them but still exits 0.
        exceptions = [
            {"count": row["count"], "message": row["msg"]}
            for row in (runner.exceptions.values() if runner is not None else [])
        ]
        return {
            "profile": profile,
            "exitCode": exit_code,
            "stopReason": self.stop_reason or "stopped from outside",
            "requestsSent": sum(totals.values()),
            "statusCounts": {str(s): n for s, n in sorted(totals.items())},
            "statusByName": {
                name: {str(s): n for s, n in sorted(c.items())}
                for name, c in sorted(self.status.items())
            },
            "rateLimited": {str(s): n for s, n in sorted(limited.items())},
            "usersStarted": self.users_started,
            "clientIps": sorted(self.client_ips, key=ipaddress.ip_address),
            "exceptions": exceptions,
        }


def parse_cache_control(value: str) -> float:
    """Seconds a response stays fresh in a browser cache (0: revalidate every time)."""
    lowered = value.lower()
    if "no-cache" in lowered or "no-store" in lowered:
        return 0.0
    match = MAX_AGE.search(lowered)
    return float(match.group(1)) if match else 0.0


def is_loopback_url(url: str) -> bool:
    """True for http(s) URLs whose host is `localhost` or a loopback address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False
