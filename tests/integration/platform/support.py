"""Helpers for tests that drive a running local platform through the seam: HTTPS through the
ingress (self-signed certificate, no redirects followed), Prometheus queries awaited with
`platform.wait_for`, and the process that listens on one of the edge's ports."""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

import psutil

from finchsim.platform.base import Platform

NS = "finch-production"
API = "api.finch.example.com"
WEB = "finch.example.com"
_TLS = ssl.create_default_context()
_TLS.check_hostname = False
_TLS.verify_mode = ssl.CERT_NONE


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def get(
    url: str,
    host: str,
    client_ip: str | None = None,
    timeout: float = 10,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str]]:
    headers = {"Host": host, **(headers or {})}
    if client_ip:
        headers["X-Forwarded-For"] = client_ip
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=_TLS))
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


def answers(url: str, host: str = "127.0.0.1") -> bool:
    """Whether `url` answers 200 now (False while nothing listens there)."""
    try:
        return get(url, host, timeout=5)[0] == 200
    except OSError:
        return False


def routed(
    platform: Platform, url: str, host: str, headers: dict[str, str] | None = None
) -> dict[str, str]:
    """Await a 200 from `url` through the ingress; its response headers. `up` returns once
    the pods are ready; the ingress follows their endpoints at its next sync (at most 0.3 a
    second, as ingress-nginx), so the first requests may still find no upstream (502)."""

    def answered() -> dict[str, str] | None:
        status, got = get(url, host, headers=headers)
        return got if status == 200 else None

    found: dict[str, str] = platform.wait_for(answered, 60, f"{url} (Host {host}) routed")
    return found


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


def query(
    platform: Platform,
    promql: str,
    timeout: float = 60,
    until: Callable[[list[dict[str, Any]]], bool] = bool,
) -> list[dict[str, Any]]:
    """An instant query, awaited until `until(result)` holds (by default: until it returns
    something). Prometheus sees a change only at its next scrape: never query just once."""
    url = f"{platform.prometheus_url()}/api/v1/query?" + urllib.parse.urlencode({"query": promql})

    def answered() -> list[dict[str, Any]] | None:
        result: list[dict[str, Any]] = get_json(url)["data"]["result"]
        return result if until(result) else None

    found: list[dict[str, Any]] = platform.wait_for(
        answered, timeout, f"Prometheus to answer {promql}", interval=1
    )
    return found


def listener(url: str) -> psutil.Process:
    """The leader of the process group listening on `url`'s port (loopback): a shared socket
    (an nginx master's, held by its workers too) is reported under one holder only, so the
    holder's group leader is the process that opened it."""
    port = urllib.parse.urlsplit(url).port
    pids = {
        c.pid
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid is not None
    }
    leaders = {os.getpgid(pid) for pid in pids}
    assert len(leaders) == 1, f"listeners of {url}: {pids}"
    return psutil.Process(leaders.pop())
