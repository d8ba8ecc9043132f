"""finch's kubelet against the real control plane: nodes, pods as real processes on their own
loopback addresses, the real controllers acting on what it reports."""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from finchsim.errors import PlatformError
from finchsim.platform.kubernetes.client import Clients, api_message
from finchsim.platform.providers.local_lock import MachineLock
from tests.kubelet.conftest import NS, wait_for

pytestmark = pytest.mark.kwok

RESTRICTED = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "runAsGroup": 65534,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def deployment(
    name: str, command: list[str], image: str = "python:3.12", **extra: Any
) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": image,
        "command": command,
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        "ports": [{"containerPort": 8080, "name": "http"}],
        "resources": {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "128Mi"},
        },
        "securityContext": RESTRICTED,
        **extra,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container], "terminationGracePeriodSeconds": 5},
            },
        },
    }


SERVE = ["python3", "-m", "http.server", "8080", "--bind", "$(POD_IP)"]


def pods_of(api: Clients, app: str) -> list[Any]:
    return [
        p
        for p in api.core.list_namespaced_pod(NS, label_selector=f"app={app}").items
        if p.metadata.deletion_timestamp is None
    ]


def ready_pod(api: Clients, app: str) -> Any:
    for pod in pods_of(api, app):
        conditions = {c.type: c.status for c in pod.status.conditions or []}
        if conditions.get("Ready") == "True":
            return pod
    return None


def web(api: Clients) -> Any:
    """The `web` Deployment (made once per module), and its first Ready pod."""
    if not api.apps.list_namespaced_deployment(NS, field_selector="metadata.name=web").items:
        api.apps.create_namespaced_deployment(
            NS,
            deployment(
                "web",
                SERVE,
                readinessProbe={"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
            ),
        )
    return wait_for("the web pod Ready", lambda: ready_pod(api, "web"), timeout=60)


def test_nodes_register_ready_with_loopback_addresses(api: Clients) -> None:
    nodes = api.core.list_node().items
    assert len(nodes) == 3, [n.metadata.name for n in nodes]
    for node in nodes:
        ready = {c.type: c.status for c in node.status.conditions}["Ready"]
        address = {a.type: a.address for a in node.status.addresses}["InternalIP"]
        print(node.metadata.name, ready, address, node.metadata.labels)
        assert ready == "True"
        assert ipaddress.ip_address(address).is_loopback
        assert node.status.daemon_endpoints.kubelet_endpoint.port > 0
        assert node.metadata.labels["topology.kubernetes.io/zone"].startswith("zone-")
        lease = api.coordination.read_namespaced_lease(node.metadata.name, "kube-node-lease")
        assert lease.spec.holder_identity == node.metadata.name


def test_deployment_pod_served_on_its_own_loopback_address(api: Clients) -> None:
    pod = web(api)
    ip = pod.status.pod_ip
    print("pod", pod.metadata.name, "on", pod.spec.node_name, "ip", ip, "host", pod.status.host_ip)
    assert ipaddress.ip_address(ip).is_loopback and ip != "127.0.0.1"
    assert pod.status.host_ip.startswith("127.0.10.")
    with urllib.request.urlopen(f"http://{ip}:8080/", timeout=5) as resp:
        assert resp.status == 200
    status = pod.status.container_statuses[0]
    assert status.state.running is not None and status.ready


def test_deleted_pod_replaced_by_the_replicaset_controller(api: Clients) -> None:
    before = web(api)
    api.core.delete_namespaced_pod(before.metadata.name, NS)
    # Our kubelet stops the containers within the grace, then removes the object.
    wait_for(
        "the old pod gone",
        lambda: (
            before.metadata.name
            not in [p.metadata.name for p in api.core.list_namespaced_pod(NS).items]
        ),
        timeout=30,
    )
    after = wait_for(
        "a replacement Ready",
        lambda: (
            (p := ready_pod(api, "web")) is not None and p.metadata.uid != before.metadata.uid and p
        ),
        timeout=60,
    )
    print(
        "before",
        before.metadata.name,
        before.status.pod_ip,
        "after",
        after.metadata.name,
        after.status.pod_ip,
    )
    with urllib.request.urlopen(f"http://{after.status.pod_ip}:8080/", timeout=5) as resp:
        assert resp.status == 200


def _container_status(api: Clients, app: str) -> Any:
    pods = pods_of(api, app)
    if not pods or not pods[0].status.container_statuses:
        return None
    return pods[0].status.container_statuses[0]


def test_crashing_container_backs_off_growing(api: Clients) -> None:
    api.apps.create_namespaced_deployment(
        NS, deployment("crash", ["python3", "-c", "import sys; print('bye'); sys.exit(3)"])
    )
    seen: list[str] = []

    def backoff(seconds: int) -> Any:
        status = _container_status(api, "crash")
        waiting = status and status.state.waiting
        if waiting and waiting.reason == "CrashLoopBackOff":
            if waiting.message not in seen:
                seen.append(waiting.message)
            return f"back-off {seconds}s" in waiting.message and status
        return None

    first = wait_for("back-off 10s", lambda: backoff(10), timeout=60)
    second = wait_for("back-off 20s", lambda: backoff(20), timeout=60)
    print("restarts", first.restart_count, "->", second.restart_count, "messages", seen)
    assert second.restart_count > first.restart_count >= 2  # the first restart was immediate
    assert second.last_state.terminated.exit_code == 3
    assert second.last_state.terminated.reason == "Error"


def test_a_container_over_its_memory_limit_is_oom_killed(api: Clients) -> None:
    """The cgroup's limit (128Mi) kills it; its status says OOMKilled, exit 137, as a kubelet's."""
    hog = "import time; b = bytearray(400 * 2**20); time.sleep(60)"
    api.apps.create_namespaced_deployment(NS, deployment("hog", ["python3", "-c", hog]))

    def killed() -> Any:
        status = _container_status(api, "hog")
        last = status and status.last_state and status.last_state.terminated
        return last if last and last.reason == "OOMKilled" else None

    last = wait_for("the hog OOMKilled", killed, timeout=90)
    assert last.exit_code == 137, last
    api.apps.delete_namespaced_deployment("hog", NS)


def test_unknown_image_waits_in_image_pull_back_off(api: Clients) -> None:
    api.apps.create_namespaced_deployment(
        NS, deployment("noimage", ["serve"], image="example.com/nothing:1.0")
    )
    reasons: list[tuple[str, str]] = []

    def reason(wanted: str) -> Any:
        status = _container_status(api, "noimage")
        waiting = status and status.state.waiting
        if waiting:
            if (waiting.reason, waiting.message) not in reasons:
                reasons.append((waiting.reason, waiting.message))
            return waiting.reason == wanted and waiting
        return None

    pulled = wait_for("ErrImagePull", lambda: reason("ErrImagePull"), timeout=60, every=0.1)
    backoff = wait_for("ImagePullBackOff", lambda: reason("ImagePullBackOff"), timeout=60)
    print(reasons)
    assert "example.com/nothing:1.0" in pulled.message
    assert backoff.message == 'Back-off pulling image "example.com/nothing:1.0"'
    assert _container_status(api, "noimage").restart_count == 0


def test_pod_violating_restricted_is_rejected_by_admission(api: Clients) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged", "namespace": NS},
        "spec": {"containers": [{"name": "main", "image": "python:3.12"}]},
    }
    with pytest.raises(ApiException) as caught:
        api.core.create_namespaced_pod(NS, body)
    message = api_message(caught.value)
    print(message)
    assert caught.value.status == 403
    assert message.startswith(
        'pods "privileged" is forbidden: violates PodSecurity "restricted:latest"'
    )
    assert "must set securityContext.runAsNonRoot=true" in message


def test_metrics_server_scrapes_the_kubelet(api: Clients) -> None:
    pod = web(api)

    def metrics() -> Any:
        try:
            return api.custom.get_namespaced_custom_object(
                "metrics.k8s.io", "v1beta1", NS, "pods", pod.metadata.name
            )
        except ApiException:
            return None

    found = wait_for("metrics of the web pod", metrics, timeout=120, every=2)
    print(found)
    usage = found["containers"][0]["usage"]
    assert found["containers"][0]["name"] == "main"
    assert usage["memory"].endswith("Ki") and int(usage["memory"][:-2]) > 1000
    top = subprocess.run(
        ["kubectl", "--kubeconfig", str(api.kubeconfig), "top", "pod", "-n", NS, pod.metadata.name],
        capture_output=True,
        text=True,
        check=True,
    )
    print(top.stdout)
    assert pod.metadata.name in top.stdout


def test_failed_node_goes_not_ready_and_its_pods_stop(up: Any, api: Clients) -> None:
    pod = web(api)
    node = pod.spec.node_name
    up.fail_node(node)

    def condition() -> Any:
        ready = {c.type: c for c in api.core.read_node(node).status.conditions}["Ready"]
        return ready.status == "Unknown" and ready

    ready = wait_for(f"{node} NotReady", condition, timeout=90, every=1)
    taints = [t.key for t in api.core.read_node(node).spec.taints or []]
    print(node, ready.status, ready.reason, ready.message, taints)
    assert ready.reason == "NodeStatusUnknown"
    assert "node.kubernetes.io/unreachable" in taints
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://{pod.status.pod_ip}:8080/", timeout=2)
    up.recover_node(node)

    def back() -> Any:
        ready = {c.type: c for c in api.core.read_node(node).status.conditions}["Ready"]
        return ready.status == "True" and ready

    wait_for(f"{node} Ready again", back, timeout=60, every=1)
    wait_for("web Ready again", lambda: ready_pod(api, "web"), timeout=90)


BURN = ["python3", "-c", "import time\nwhile True:\n    time.sleep(0)"]


def test_real_hpa_scales_on_measured_cpu(api: Clients) -> None:
    """A container spinning on its 500m limit (request 100m) is at ~500% of its request: the
    real HPA scales its Deployment out on the usage our kubelet measured."""
    api.apps.create_namespaced_deployment(NS, deployment("burn", BURN))
    api.autoscaling.create_namespaced_horizontal_pod_autoscaler(
        NS,
        {
            "metadata": {"name": "burn"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "burn"},
                "minReplicas": 1,
                "maxReplicas": 2,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
            },
        },
    )

    def scaled() -> Any:
        hpa = api.autoscaling.read_namespaced_horizontal_pod_autoscaler_status("burn", NS)
        current = hpa.status.current_metrics or []
        return (hpa.status.desired_replicas or 0) >= 2 and (hpa.status, current)

    status, metrics = wait_for("the HPA to scale burn out", scaled, timeout=180, every=2)
    print(status.desired_replicas, metrics)
    assert metrics[0].resource.current.average_utilization > 70
    api.apps.delete_namespaced_deployment("burn", NS)


def test_kubelet_endpoint_serves_resource_and_cadvisor_metrics(up: Any, api: Clients) -> None:
    pod = web(api)
    node = api.core.read_node(pod.spec.node_name)
    ip = {a.type: a.address for a in node.status.addresses}["InternalIP"]
    port = node.status.daemon_endpoints.kubelet_endpoint.port
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # self-signed

    def get(path: str) -> str:
        with urllib.request.urlopen(f"https://{ip}:{port}{path}", context=context) as resp:
            return str(resp.read().decode())

    labels = f'container="main",namespace="{NS}",pod="{pod.metadata.name}"'
    resource = get("/metrics/resource")
    cadvisor = get("/metrics/cadvisor")
    print(resource, cadvisor[:1500], sep="\n")
    assert f"container_cpu_usage_seconds_total{{{labels}}}" in resource
    assert "node_memory_working_set_bytes " in resource
    line = next(x for x in cadvisor.splitlines() if x.startswith("container_spec_cpu_quota{"))
    assert f'pod="{pod.metadata.name}"' in line and " 50000 " in line  # limit 500m
    keys = list(Path(up.kubeconfig()).parents[3].glob("kubelet/pki/kubelet.key"))
    assert keys and oct(keys[0].stat().st_mode & 0o777) == "0o600"


def test_kubelet_records_events(api: Clients) -> None:
    """`kubectl get events` tells what the kubelet did: Started, BackOff (the crashing pod of
    the test above; made here if that test was not run)."""
    if not pods_of(api, "crash"):
        api.apps.create_namespaced_deployment(
            NS, deployment("crash", ["python3", "-c", "import sys; sys.exit(3)"])
        )

    def found() -> Any:
        events = api.core.list_namespaced_event(NS).items
        mine = {
            (e.reason, e.type)
            for e in events
            if e.source.component == "kubelet" and e.involved_object.name.startswith("crash-")
        }
        return {("Started", "Normal"), ("BackOff", "Warning")} <= mine and mine

    mine = wait_for("the kubelet's Started and BackOff events", found, timeout=60, every=1)
    print(sorted(mine))


def test_a_second_local_platform_on_this_machine_is_refused(up: Any) -> None:
    """The running one holds the machine's lock: another checkout's `up` would get its
    loopback addresses."""
    with pytest.raises(PlatformError, match=rf"another local platform .*run {up.run_dir.name}"):
        MachineLock().acquire("a second one")


def test_killed_control_plane_processes_are_started_again(
    up: Any, api: Clients, events: list[str]
) -> None:
    """kill -9 of the API server and the scheduler: the platform's loop starts them again and
    says so, and the restarted scheduler binds a new pod that our kubelet then runs. (Last in
    the module: the API server is away for a few seconds.)"""
    cluster = up.provider.cluster
    pids = cluster.pids()
    for name in ("kube-apiserver", "kube-scheduler"):
        subprocess.run(["kill", "-9", str(pids[name])], check=True)
    wait_for(
        "both seen dead",
        lambda: {"kube-apiserver", "kube-scheduler"} <= set(cluster.dead_components()),
    )
    up.poll()  # restarts them (it raises only when a process keeps exiting)
    assert cluster.dead_components() == []
    told = [e for e in events if e.startswith("control plane: ")]
    assert any("exited; starting again" in e for e in told), events[-5:]
    assert any(e.endswith("restarted") for e in told), events[-5:]
    api.apps.create_namespaced_deployment(NS, deployment("after-restart", SERVE))
    pod = wait_for(
        "a pod bound and running after the restart",
        lambda: next(
            (p for p in pods_of(api, "after-restart") if p.status.phase == "Running"), None
        ),
        timeout=90,
    )
    assert pod.spec.node_name.startswith("finch-node-")
