"""The Service environment variables of finch's kubelet, against what FromServices and
getServiceEnvVarMap produce (pkg/kubelet/envvars/envvars.go, pkg/kubelet/kubelet_pods.go)."""

from __future__ import annotations

from typing import Any

from finchsim.platform.kubelet.envvars import pod_service_env, service_links, service_variables


def service(namespace: str, name: str, ip: str, *ports: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"clusterIP": ip, "ports": list(ports)},
    }


def pod(namespace: str, links: bool | None = None) -> dict[str, Any]:
    spec = {} if links is None else {"enableServiceLinks": links}
    return {"metadata": {"namespace": namespace, "name": "p"}, "spec": spec}


REDIS = service(
    "finch", "finch-redis", "127.96.0.9", {"port": 6379, "name": "redis"}, {"port": 9121}
)
API = service("default", "kubernetes", "127.96.0.1", {"port": 443, "name": "https"})


def test_every_variable_of_a_service_with_two_ports() -> None:
    assert service_variables(REDIS) == {
        "FINCH_REDIS_SERVICE_HOST": "127.96.0.9",
        "FINCH_REDIS_SERVICE_PORT": "6379",
        "FINCH_REDIS_SERVICE_PORT_REDIS": "6379",
        "FINCH_REDIS_PORT": "tcp://127.96.0.9:6379",
        "FINCH_REDIS_PORT_6379_TCP": "tcp://127.96.0.9:6379",
        "FINCH_REDIS_PORT_6379_TCP_PROTO": "tcp",
        "FINCH_REDIS_PORT_6379_TCP_PORT": "6379",
        "FINCH_REDIS_PORT_6379_TCP_ADDR": "127.96.0.9",
        "FINCH_REDIS_PORT_9121_TCP": "tcp://127.96.0.9:9121",
        "FINCH_REDIS_PORT_9121_TCP_PROTO": "tcp",
        "FINCH_REDIS_PORT_9121_TCP_PORT": "9121",
        "FINCH_REDIS_PORT_9121_TCP_ADDR": "127.96.0.9",
    }


def test_headless_services_and_leading_digits() -> None:
    assert service_variables(service("finch", "db", "None", {"port": 5432})) == {}
    named = service_variables(service("finch", "9lives.x", "127.96.0.3", {"port": 80}))
    assert named["_9LIVES_X_SERVICE_HOST"] == "127.96.0.3"


def test_a_pod_gets_its_namespaces_services_and_the_api_servers_only() -> None:
    other = service("elsewhere", "finch-redis", "127.96.0.77", {"port": 1})
    links = service_links([REDIS, API, other])
    env = pod_service_env(pod("finch"), links)
    assert env["FINCH_REDIS_SERVICE_HOST"] == "127.96.0.9"
    assert env["KUBERNETES_SERVICE_HOST"] == "127.96.0.1"
    assert env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    # enableServiceLinks: false keeps only the API server's.
    assert sorted(pod_service_env(pod("finch", links=False), links)) == sorted(
        service_variables(API)
    )


def test_a_namespaces_own_kubernetes_service_wins_over_the_api_servers() -> None:
    own = service("finch", "kubernetes", "127.96.0.50", {"port": 80})
    env = pod_service_env(pod("finch"), service_links([API, own]))
    assert env["KUBERNETES_SERVICE_HOST"] == "127.96.0.50"
