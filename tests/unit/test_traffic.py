"""Reading the ingress access log: counts by host/method/status, rates, rejections."""

from __future__ import annotations

import time
from pathlib import Path

from finchsim.platform.local.traffic import IngressTraffic

API = "finch-api finch-backend /"
WEB = "finch-web finch-frontend /"


def test_counts_rates_and_rejections_across_partial_writes(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    now = time.time()
    lines = [
        f"{now - 1:.3f} api.example 200 0.010 127.0.0.1:4001 GET {API}",
        f"{now - 1:.3f} api.example 503 0.000 - GET {API}",  # the rate limit: no upstream
        f"{now - 1:.3f} api.example 503 0.020 127.0.0.1:4001 POST {API}",  # the app's own 503
        f"{now - 1:.3f} web.example 200 0.001 127.0.0.1:4002 GET {WEB}",
        # The first upstream refused, the request was retried on the next one.
        f"{now - 1:.3f} api.example 200 0.030 127.0.0.1:4001, 127.0.0.1:4003 GET {API}",
        f"{now - 1:.3f} unknown.example 404 0.000 - GET - - -",  # catch-all: not counted
        f"{now - 60:.3f} api.example 200 0.010 127.0.0.1:4001 GET {API}",  # not in the rates
    ]
    text = "\n".join(lines) + "\n"
    traffic = IngressTraffic(log, "finch-production", limit_status=503)
    log.write_text(text[:50])  # nginx may flush in the middle of a line
    traffic.read()
    with log.open("a") as out:
        out.write(text[50:])
    traffic.read()
    totals = {(c.host, c.method, c.status): c.count for c in traffic.totals()}
    assert totals == {
        ("api.example", "GET", "200"): 3,
        ("api.example", "GET", "503"): 1,
        ("api.example", "POST", "503"): 1,
        ("web.example", "GET", "200"): 1,
    }
    services = {c.host: (c.ingress, c.service, c.path) for c in traffic.totals()}
    assert services["web.example"] == ("finch-web", "finch-frontend", "/")
    rates = traffic.rates(window=5.0)
    assert (rates.requests, rates.errors, rates.limited) == (5 / 5, 1 / 5, 1 / 5)


def test_missing_log_reads_nothing(tmp_path: Path) -> None:
    traffic = IngressTraffic(tmp_path / "none.log", "ns", limit_status=429)
    traffic.read()
    assert traffic.totals() == () and traffic.rates().requests == 0
