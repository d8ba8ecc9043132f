"""The Service proxy fed by a real kube-apiserver (etcd + kube-apiserver from the pinned cache,
`--service-cluster-ip-range=127.96.0.0/16`, no controllers): the Service gets a loopback
ClusterIP from the API server, pod statuses are written as our kubelet writes them (loopback pod
IP, Ready), and the proxy follows them through `KubernetesSource`."""

from __future__ import annotations

import random
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from finchsim.platform.controlplane import controlplane_binaries
from finchsim.platform.controlplane.kwokctl import (
    ControlPlaneTimings,
    KwokctlCluster,
    kwokctl_config,
)
from finchsim.platform.kubernetes.client import Clients
from finchsim.platform.network import KubernetesSource, ServiceProxy
from finchsim.project import Project
from tests.integration.network.support import Backend, greeting

pytestmark = pytest.mark.kwok

NS = "net-test"
OCTET = random.randint(100, 250)


@pytest.fixture(scope="module")
def clients(project: Project) -> Iterator[Clients]:
    binaries = controlplane_binaries(project).by_name()
    workdir = Path(tempfile.mkdtemp(prefix="finchsim-proxy-api-"))
    cluster = KwokctlCluster(f"proxy-{OCTET}", workdir, binaries)
    config = kwokctl_config(binaries, ControlPlaneTimings(), controllers=False)
    for patch in config[0]["componentsPatches"]:
        if patch["name"] == "kube-apiserver":  # kwokctl sets no range itself: appended
            patch["extraArgs"].append(
                {"key": "service-cluster-ip-range", "value": "127.96.0.0/16", "override": False}
            )
    try:
        kubeconfig = cluster.create(config)
        api = Clients.connect(kubeconfig, workdir / "discovery.json")
        try:
            api.core.create_namespace({"metadata": {"name": NS}})
            # no controller-manager here to make it
            api.core.create_namespaced_service_account(NS, {"metadata": {"name": "default"}})
            yield api
        finally:
            api.close()
    finally:
        cluster.delete()
        shutil.rmtree(workdir, ignore_errors=True)


def wait_until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def set_ready(api: Clients, name: str, ip: str, ready: bool) -> None:
    status = {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    api.core.patch_namespaced_pod_status(name, NS, {"status": status})


def test_proxy_follows_the_api_server(clients: Clients) -> None:
    backends = [Backend(f"127.0.{OCTET}.5", "pod-a"), Backend(f"127.0.{OCTET}.6", "pod-b")]
    service = clients.core.create_namespaced_service(
        NS,
        {
            "metadata": {"name": "echo"},
            "spec": {"selector": {"app": "echo"}, "ports": [{"port": 7000, "targetPort": "echo"}]},
        },
    )
    cluster_ip = service.spec.cluster_ip
    print("ClusterIP from the API server:", cluster_ip)
    assert cluster_ip.startswith("127.96.")
    for backend in backends:
        ip, port = backend.endpoint
        clients.core.create_namespaced_pod(
            NS,
            {
                "metadata": {"name": backend.name, "labels": {"app": "echo"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "echo",
                            # each pod names its own port: resolved per pod
                            "ports": [{"name": "echo", "containerPort": port}],
                        }
                    ]
                },
            },
        )
        set_ready(clients, backend.name, ip, True)
    proxy = ServiceProxy(KubernetesSource(clients.core, [NS]), resync=0.2)
    proxy.start()

    def who() -> str | None:
        try:
            with socket.create_connection((cluster_ip, 7000), timeout=2) as s:
                return greeting(s).split()[0]
        except ConnectionRefusedError:
            return None

    try:
        assert {who(), who()} == {"pod-a", "pod-b"}
        set_ready(clients, "pod-a", backends[0].endpoint[0], False)
        wait_until(lambda: {who() for _ in range(4)} == {"pod-b"}, 10, "pod-a out of the Service")
        set_ready(clients, "pod-b", backends[1].endpoint[0], False)
        wait_until(lambda: who() is None, 10, "connection refused with no ready endpoint")
        print(proxy.collect())
    finally:
        proxy.stop()
        for backend in backends:
            backend.shutdown()
            backend.server_close()
