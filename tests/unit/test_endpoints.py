"""Ready endpoints from pods, with the EndpointSlice controller's rules (Kubernetes v1.34:
pkg/controller/endpointslice/reconciler.go, staging/src/k8s.io/endpointslice/utils.go
`podToEndpoint` / `ShouldPodBeInEndpoints`, pkg/api/v1/pod `FindPort`)."""

from __future__ import annotations

import ipaddress
from typing import Any

from kubernetes import client

from finchsim.platform.network.endpoints import (
    HEADLESS_RANGE,
    Frontend,
    frontends,
    headless_ip,
    ready_endpoints,
)

NS = "finch-production"


def svc(
    name: str = "finch-backend",
    *,
    selector: dict[str, str] | None = None,
    ports: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "selector": {"app": "backend"} if selector is None else selector,
            "clusterIP": "127.96.0.10",
            "ports": ports or [{"name": "http", "port": 80, "targetPort": "http"}],
            **spec,
        },
    }


def pod(
    ip: str,
    *,
    ready: bool = True,
    phase: str = "Running",
    labels: dict[str, str] | None = None,
    namespace: str = NS,
    ports: list[dict[str, Any]] | None = None,
    deleting: bool = False,
    init: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": f"p-{ip}",
        "namespace": namespace,
        "labels": {"app": "backend"} if labels is None else labels,
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-12-02T15:00:00Z"
    return {
        "metadata": meta,
        "spec": {
            "containers": [
                {"name": "app", "ports": ports or [{"name": "http", "containerPort": 8000}]}
            ],
            "initContainers": init or [],
        },
        "status": {
            "phase": phase,
            "podIP": ip,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


KEY = (NS, "finch-backend", 80)


def test_selector_readiness_and_named_port() -> None:
    pods = [
        pod("127.0.10.6"),
        pod("127.0.10.5"),
        pod("127.0.10.7", ready=False),  # Ready=False: not ready
        pod("127.0.10.8", labels={"app": "worker"}),  # not selected
        pod("127.0.10.9", namespace="other"),  # selector is namespaced
    ]
    assert ready_endpoints([svc()], pods) == {KEY: [("127.0.10.5", 8000), ("127.0.10.6", 8000)]}


def test_terminal_terminating_and_ipless_pods_are_not_endpoints() -> None:
    pods = [
        pod("127.0.10.5", phase="Succeeded"),
        pod("127.0.10.6", phase="Failed"),
        pod("127.0.10.7", deleting=True),  # terminating: ready=false even when Ready=True
        pod("", phase="Pending"),
    ]
    assert ready_endpoints([svc()], pods) == {KEY: []}


def test_publish_not_ready_addresses_includes_unready_and_terminating() -> None:
    # podToEndpoint: ready := service.Spec.PublishNotReadyAddresses || (serving && !terminating)
    pods = [pod("127.0.10.5", ready=False), pod("127.0.10.6", deleting=True), pod("127.0.10.7")]
    got = ready_endpoints([svc(publishNotReadyAddresses=True)], pods)
    assert got == {KEY: [("127.0.10.5", 8000), ("127.0.10.6", 8000), ("127.0.10.7", 8000)]}
    # ...but never a Failed/Succeeded pod (ShouldPodBeInEndpoints)
    assert (
        ready_endpoints([svc(publishNotReadyAddresses=True)], [pod("127.0.10.5", phase="Failed")])[
            KEY
        ]
        == []
    )


def test_named_target_port_resolves_per_pod_and_by_protocol() -> None:
    # Two pods of one Service may name the same port differently numbered (a rollout).
    pods = [
        pod("127.0.10.5", ports=[{"name": "http", "containerPort": 8000}]),
        pod("127.0.10.6", ports=[{"name": "http", "containerPort": 9000}]),
        pod("127.0.10.7", ports=[{"name": "metrics", "containerPort": 9100}]),  # no "http"
        pod("127.0.10.8", ports=[{"name": "http", "containerPort": 53, "protocol": "UDP"}]),
    ]
    assert ready_endpoints([svc()], pods)[KEY] == [("127.0.10.5", 8000), ("127.0.10.6", 9000)]


def test_numeric_and_missing_target_port() -> None:
    ports = [
        {"name": "a", "port": 80, "targetPort": 8080},
        {"name": "b", "port": 81},  # the API server defaults targetPort to port
        {"name": "c", "port": 82, "targetPort": "8082"},
    ]
    got = ready_endpoints([svc(ports=ports)], [pod("127.0.10.5")])
    assert got == {
        (NS, "finch-backend", 80): [("127.0.10.5", 8080)],
        (NS, "finch-backend", 81): [("127.0.10.5", 81)],
        (NS, "finch-backend", 82): [("127.0.10.5", 8082)],
    }


def test_sidecar_ports_count_for_named_target_ports() -> None:
    # FindPort also searches restartable init containers (sidecars, restartPolicy Always).
    sidecar = {
        "name": "proxy",
        "restartPolicy": "Always",
        "ports": [{"name": "web", "containerPort": 8443}],
    }
    plain_init = {"name": "migrate", "ports": [{"name": "web", "containerPort": 9999}]}
    ports = [{"name": "web", "port": 443, "targetPort": "web"}]
    got = ready_endpoints([svc(ports=ports)], [pod("127.0.10.5", init=[plain_init, sidecar])])
    assert got == {(NS, "finch-backend", 443): [("127.0.10.5", 8443)]}


def test_services_without_selector_or_external_name_get_none() -> None:
    external = svc("ext", type="ExternalName", externalName="example.com")
    assert ready_endpoints([svc("manual", selector={}), external], [pod("127.0.10.5")]) == {}


def test_headless_services_get_a_stable_loopback_address_external_name_none() -> None:
    headless = svc("finch-redis", clusterIP="None")
    unselected = svc("manual-headless", selector={}, clusterIP="None")
    external = svc("ext", type="ExternalName", clusterIP="")
    got = frontends([svc(), headless, unselected, external])
    stable = headless_ip(NS, "finch-redis")
    assert got == [
        Frontend(NS, "finch-backend", "127.96.0.10", 80, "TCP"),
        Frontend(NS, "finch-redis", stable, 80, "TCP"),
    ]
    assert stable.startswith("127.97.") and stable == headless_ip(NS, "finch-redis")
    assert headless_ip(NS, "finch-postgres") != stable
    assert ipaddress.ip_address(stable) in ipaddress.ip_network(HEADLESS_RANGE)


def test_kubernetes_client_models_are_accepted() -> None:
    model_svc = client.V1Service(
        metadata=client.V1ObjectMeta(name="finch-backend", namespace=NS),
        spec=client.V1ServiceSpec(
            selector={"app": "backend"},
            cluster_ip="127.96.0.10",
            ports=[client.V1ServicePort(port=80, target_port="http", protocol="TCP")],
        ),
    )
    model_pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="p", namespace=NS, labels={"app": "backend"}),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="app", ports=[client.V1ContainerPort(name="http", container_port=8000)]
                )
            ]
        ),
        status=client.V1PodStatus(
            phase="Running",
            pod_ip="127.0.10.5",
            conditions=[client.V1PodCondition(type="Ready", status="True")],
        ),
    )
    assert ready_endpoints([model_svc], [model_pod]) == {KEY: [("127.0.10.5", 8000)]}
    assert frontends([model_svc]) == [Frontend(NS, "finch-backend", "127.96.0.10", 80)]
