"""The ingress renderer's plan, against ingress-nginx (see finchsim.platform.local.ingress's
docstring for the files read): zones and limits per annotation, one server per host."""

from __future__ import annotations

from pathlib import Path

import pytest

from finchsim.platform.local.ingress import (
    ControllerSettings,
    RateLimit,
    endpoint_pairs,
    plan_servers,
    render_config,
    upstreams_from_endpoints,
)
from finchsim.platform.network import ready_endpoints
from finchsim.platform.topology import Ingress, IngressRule

P = "nginx.ingress.kubernetes.io/"


def ing(name: str, host: str, path: str = "/", tls: bool = False, **notes: str) -> Ingress:
    return Ingress(
        name,
        (IngressRule(host, "backend", "http", path),),
        {P + k.replace("_", "-"): v for k, v in notes.items()},
        (host,) if tls else (),
    )


def test_rps_and_rpm_together_give_two_zones_and_two_limits() -> None:
    _, limits = plan_servers([ing("api", "a", limit_rps="10", limit_rpm="100")], {}, "ns")
    assert limits == [RateLimit("ns_api", rps=10, rpm=100)]
    assert limits[0].zones() == [
        "limit_req_zone $limit_ns_api zone=ns_api_rpm:5m rate=100r/m;",
        "limit_req_zone $limit_ns_api zone=ns_api_rps:5m rate=10r/s;",
    ]
    # template.go buildRateLimit: connections, then rps, then rpm; burst = limit x 5 by default
    assert limits[0].limits() == [
        "limit_req zone=ns_api_rps burst=50 nodelay;",
        "limit_req zone=ns_api_rpm burst=500 nodelay;",
    ]


def test_connections_multiplier_and_allowlist() -> None:
    notes = {
        "limit_connections": "4",
        "limit_rps": "3",
        "limit_burst_multiplier": "2",
        "limit_allowlist": "10.0.0.0/8, 192.0.2.7",
        "limit_whitelist": "172.16.0.0/12",  # the alias loses to limit-allowlist
    }
    _, [limit] = plan_servers([ing("api", "a", **notes)], {})
    assert limit.allowlist == ("10.0.0.0/8", "192.0.2.7")
    assert limit.limits() == [
        "limit_conn api_conn 4;",
        "limit_req zone=api_rps burst=6 nodelay;",
    ]
    assert limit.zones()[0] == "limit_conn_zone $limit_api zone=api_conn:5m;"
    _, [alias] = plan_servers([ing("x", "a", limit_rps="1", limit_whitelist="10.1.0.0/16")], {})
    assert alias.allowlist == ("10.1.0.0/16",)


def test_an_allowlist_without_a_limit_does_nothing() -> None:
    assert plan_servers([ing("api", "a", limit_allowlist="10.0.0.0/8")], {})[1] == []


def test_ingresses_for_one_host_merge_into_one_server() -> None:
    first = ing("api", "api.x", tls=True, limit_rpm="100", enable_cors="true")
    deny = ing("deny", "api.x", "/metrics", whitelist_source_range="127.0.0.1/32")
    late = ing("late", "api.x", "/", limit_rps="1")  # same path: the earlier Ingress keeps it
    servers, limits = plan_servers([first, deny, late], {})
    [server] = servers
    assert server.host == "api.x" and server.tls
    assert [(loc.path, loc.ingress) for loc in server.locations] == [
        ("/", "api"),
        ("/metrics", "deny"),
    ]
    root, metrics = server.locations
    assert root.rate_limit is not None and root.rate_limit.rpm == 100 and root.cors
    assert metrics.rate_limit is None and not metrics.cors
    assert metrics.source_range == ("127.0.0.1/32",)
    assert [rl.name for rl in limits] == ["api", "late"]


def test_rendered_real_ip_and_access_rules(tmp_path: Path) -> None:
    servers, limits = plan_servers(
        [
            ing("api", "api.x", limit_rps="1", limit_allowlist="10.0.0.0/8"),
            ing("deny", "api.x", "/metrics", whitelist_source_range="127.0.0.1, 10.0.0.0/8"),
        ],
        {},
    )
    conf = render_config(
        servers=servers,
        rate_limits=limits,
        upstreams={"backend-http": [("127.0.10.5", 8000), ("127.0.10.6", 8000)]},
        settings=ControllerSettings.from_configmap({"limit-conn-status-code": "429"}),
        http_port=1,
        https_port=2,
        run_dir=tmp_path,
        cert=tmp_path / "c",
        key=tmp_path / "k",
    )
    print(conf)
    for line in (
        "real_ip_header      X-Forwarded-For;",
        "real_ip_recursive   on;",
        "set_real_ip_from    0.0.0.0/0;",
        "limit_conn_status 429;",
        "geo $remote_addr $whitelist_api {",
        "10.0.0.0/8 1;",
        "0 $binary_remote_addr;",
        "allow 127.0.0.1;",
        "allow 10.0.0.0/8;",
        "deny all;",
        "server 127.0.10.5:8000 max_fails=0;",
        "server 127.0.10.6:8000 max_fails=0;",
    ):
        assert line in conf, line
    assert conf.count("server_name api.x;") == 1


def test_bad_cidr_is_refused_and_endpoints_convert() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.300"):
        plan_servers([ing("a", "a", whitelist_source_range="10.0.0.300/8")], {})
    assert endpoint_pairs(["127.0.0.1:5001", "127.0.10.5:8000"]) == [
        ("127.0.0.1", 5001),
        ("127.0.10.5", 8000),
    ]


def test_upstreams_from_the_ready_endpoints_of_step_one() -> None:
    service = {
        "metadata": {"name": "backend", "namespace": "ns"},
        "spec": {
            "selector": {"app": "b"},
            "clusterIP": "127.96.0.10",
            "ports": [{"name": "http", "port": 80, "targetPort": "web"}],
        },
    }
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "b"}},
        "spec": {"containers": [{"name": "c", "ports": [{"name": "web", "containerPort": 8000}]}]},
        "status": {
            "phase": "Running",
            "podIP": "127.0.10.5",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    endpoints = ready_endpoints([service], [pod])
    by_name = Ingress("a", (IngressRule("a", "backend", "http"),), {})
    by_number = Ingress("b", (IngressRule("b", "backend", 80),), {})
    unknown = Ingress("c", (IngressRule("c", "nothing", 80),), {})
    got = upstreams_from_endpoints([by_name, by_number, unknown], [service], endpoints, "ns")
    assert got == {
        "backend-http": [("127.0.10.5", 8000)],
        "backend-80": [("127.0.10.5", 8000)],
        "nothing-80": [],
    }
