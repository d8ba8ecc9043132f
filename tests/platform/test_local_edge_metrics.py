"""The two metric families the alert rules need that only the local platform's own parts can
serve, read back from its Prometheus: the ingress controller's request counter
(`nginx_ingress_controller_requests`, after requests through the ingress, a 429 burst
included) and the kubelets' `kubelet_volume_stats_*` for the claims their pods mount.

One bring-up for the module. Prometheus only learns of a request after nginx flushed its log
(each second) and its next scrape: every check polls with a deadline while the platform
reconciles, and prints what it saw when it gives up."""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from finchsim.errors import PlatformError
from finchsim.platform.base import Platform
from finchsim.platform.kubernetes.client import Clients
from finchsim.project import Project
from finchsim.running import IngressRates
from tests.platform.conftest import NS, brought_up

pytestmark = pytest.mark.kwok
API, WEB = "api.finch.example.com", "finch.example.com"
# The StatefulSets' claims (volumeClaimTemplate `data`, cluster/base/postgres.yaml, redis.yaml).
PG_POD, PG_CLAIM, REDIS_CLAIM = "finch-postgres-0", "data-finch-postgres-0", "data-finch-redis-0"
_TLS = ssl.create_default_context()
_TLS.check_hostname, _TLS.verify_mode = False, ssl.CERT_NONE  # the ingress's self-signed cert


@pytest.fixture(scope="module")
def local(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with brought_up("local", project, tmp_path_factory.mktemp("edge-metrics")) as platform:
        yield platform


@pytest.fixture(scope="module")
def api(local: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clients]:
    api = Clients.connect(local.kubeconfig(), tmp_path_factory.mktemp("api") / "discovery.json")
    yield api
    api.api.close()


def get(platform: Platform, host: str, path: str, client_ip: str) -> int:
    """GET through the ingress over HTTPS as `client_ip` (the edge trusts X-Forwarded-For,
    ingress-nginx's use-forwarded-headers default here); the status code."""
    url = urllib.parse.urlsplit(platform.ingress_url(host))
    conn = http.client.HTTPSConnection(url.hostname or "", url.port, timeout=10, context=_TLS)
    try:
        conn.request("GET", path, headers={"Host": host, "X-Forwarded-For": client_ip})
        return conn.getresponse().status
    finally:
        conn.close()


def query(platform: Platform, promql: str) -> list[dict[str, Any]]:
    url = f"{platform.prometheus_url()}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        result: list[dict[str, Any]] = json.load(resp)["data"]["result"]
    return result


def poll(platform: Platform, what: str, check: Callable[[], Any], timeout: float = 90) -> Any:
    """`check()` until truthy (the platform reconciling in between); fails with its last value."""
    seen: list[Any] = [None]

    def attempt() -> Any:
        seen[0] = check()
        return seen[0]

    try:
        return platform.wait_for(attempt, timeout, what)
    except PlatformError as exc:
        pytest.fail(f"{exc}; last seen: {seen[0]!r}")


def test_requests_through_the_ingress_are_counted_by_ingress_host_and_status(
    local: Platform, api: Clients, project: Project
) -> None:
    # As on kind (cluster/kind/ingress-nginx-controller-settings.yaml): rejections are 429.
    # A tiny budget for one client (1/min, burst 1) makes a burst of rejections cheap.
    api.core.create_namespaced_config_map(
        NS,
        {
            "metadata": {"name": "ingress-nginx-controller"},
            "data": {"limit-req-status-code": "429", "limit-conn-status-code": "429"},
        },
    )
    api.networking.patch_namespaced_ingress(
        "finch-api",
        NS,
        {
            "metadata": {
                "annotations": {
                    "nginx.ingress.kubernetes.io/limit-rpm": "1",
                    "nginx.ingress.kubernetes.io/limit-burst-multiplier": "1",
                }
            }
        },
    )
    sent: Counter[tuple[str, str, str, str]] = Counter()  # (ingress, service, host, status)

    def send(host: str, ingress: str, service: str, path: str, client_ip: str) -> int:
        status = get(local, host, path, client_ip)
        sent[(ingress, service, host, str(status))] += 1
        return status

    # Until the edge has re-rendered nginx with the new settings (its sync rate limit) and
    # reloaded it, the old budget of 500 answers 200: every answer is counted either way.
    poll(
        local,
        "a 429 from the rate limit",
        lambda: send(API, "finch-api", "finch-backend", "/healthz/live", "198.18.9.1") == 429,
    )
    for _ in range(4):
        send(API, "finch-api", "finch-backend", "/healthz/live", "198.18.9.1")
    for _ in range(2):
        send(WEB, "finch-frontend", "finch-frontend", "/", "198.18.9.2")
    assert sent[("finch-api", "finch-backend", API, "429")] >= 5, sent
    assert sent[("finch-api", "finch-backend", API, "200")] >= 1, sent
    assert sent[("finch-frontend", "finch-frontend", WEB, "200")] == 2, sent

    def counted() -> dict[tuple[str, str, str, str], int]:
        rows = query(
            local,
            f"sum by (ingress, service, host, status) (nginx_ingress_controller_requests"
            f'{{namespace="{NS}", controller_class="k8s.io/ingress-nginx"}})',
        )
        return {
            (r["metric"]["ingress"], r["metric"]["service"], r["metric"]["host"],
             r["metric"]["status"]): int(float(r["value"][1]))
            for r in rows
        }  # fmt: skip

    poll(local, f"Prometheus counting what the client saw: {dict(sent)}", lambda: counted() == sent)
    # The alert's own expression: rate() sees only increases of a series Prometheus already
    # has (its first sample is no increase, as with ingress-nginx), so reject more now.
    for _ in range(5):
        send(API, "finch-api", "finch-backend", "/healthz/live", "198.18.9.1")
    expr = alert_expr(project, "finch-app.yml", "IngressRateLimitedRequests")
    firing = poll(local, f"{expr} for finch-api", lambda: query(local, expr))
    assert [(r["metric"]["namespace"], r["metric"]["ingress"]) for r in firing] == [
        (NS, "finch-api")
    ], firing
    # The live view's traffic line reads the same counter: more rejections show as 4xx.
    for _ in range(3):
        send(API, "finch-api", "finch-backend", "/healthz/live", "198.18.9.1")

    def view_line() -> str:
        line = IngressRates().line(local)
        return line if "4xx" in line else ""

    line = poll(local, "the live view's ingress line with the 4xx", view_line)
    assert re.fullmatch(r"ingress: \d+\.\d req/s \(.*4xx \d+\.\d.*\)", line), line
    assert float(line.split()[1]) > 0, line
    poll(local, f"Prometheus counting what the client saw: {dict(sent)}", lambda: counted() == sent)


def alert_expr(project: Project, rules: str, alert: str) -> str:
    path = project.cluster / "monitoring" / "prometheus" / "rules" / rules
    groups = yaml.safe_load(path.read_text())["groups"]
    return next(str(r["expr"]) for g in groups for r in g["rules"] if r.get("alert") == alert)


def test_the_kubelet_reports_volume_stats_of_the_claims_its_pods_mount(
    local: Platform, api: Clients
) -> None:
    postgres = next(p for p in local.pods() if p.namespace == NS and p.name == PG_POD)
    claims = {c.metadata.name for c in api.core.list_namespaced_persistent_volume_claim(NS).items}
    assert {PG_CLAIM, REDIS_CLAIM} <= claims, claims

    def stats() -> dict[str, dict[str, Any]]:
        rows = query(
            local,
            f'{{__name__=~"kubelet_volume_stats_(capacity|available|used)_bytes", namespace="{NS}",'
            f' persistentvolumeclaim=~"{PG_CLAIM}|{REDIS_CLAIM}"}}',
        )
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            m = r["metric"]
            entry = out.setdefault(m["persistentvolumeclaim"], {"node": m.get("node")})
            entry[m["__name__"].removeprefix("kubelet_volume_stats_")] = float(r["value"][1])
            entry["job"] = m["job"]
        return out

    # An initialised PostgreSQL cluster is tens of megabytes; a first walk may have run before
    # initdb, so wait for one after it (the tests' aggregation period is short).
    seen = poll(
        local,
        "volume stats of both claims, postgres' past its initdb",
        lambda: (
            (s := stats()).get(PG_CLAIM, {}).get("used_bytes", 0) > 2**20 and REDIS_CLAIM in s and s
        ),
    )
    pg, redis = seen[PG_CLAIM], seen[REDIS_CLAIM]
    assert pg["job"] == "kubelet" and pg["node"] == postgres.node, (pg, postgres)
    run_dir = local.run_dir
    fs = os.statvfs(run_dir / "kubelet" / "volumes" / NS / PG_CLAIM)
    assert pg["capacity_bytes"] == fs.f_blocks * fs.f_bsize, (pg, fs)
    assert pg["capacity_bytes"] >= pg["used_bytes"] > 2**20, pg
    assert 0 < pg["available_bytes"] <= pg["capacity_bytes"], pg
    assert 0 < redis["used_bytes"] <= redis["capacity_bytes"], redis
