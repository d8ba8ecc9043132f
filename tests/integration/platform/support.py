"""Helpers for tests that drive a running local platform: HTTPS through the ingress (self-signed
certificate, no redirects followed) and waiting while reconciling, as `finchsim up` does."""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest

from finchsim.platform.local.platform import LocalPlatform

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


def wait_for(
    platform: LocalPlatform,
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    each: Callable[[], None] | None = None,
) -> None:
    """Reconcile until `condition()` holds; fail with the pods' states after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pods = [(p.name, p.node, p.phase, p.ready) for p in platform.snapshot_value.pods]
            pytest.fail(f"{what} not reached in {timeout}s; pods: {pods}")
        platform.step()
        if each is not None:
            each()
        time.sleep(0.2)
