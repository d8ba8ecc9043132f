"""The kube-state exporter against the real control plane (KWOK nodes), scraped over HTTP.

The Finch topology is brought up as test_kwok_e2e does; each test changes something through
the API (scale a Deployment, a pod's container state as a kubelet reports it, a Deployment no
node can take, a PVC, a CronJob, a Job), then waits until a scrape shows what the API says, and
prints both. A pod's waiting/terminated states are written to its status by the test itself,
as a kubelet would, on a node of its own that the kwok controller does not manage (KWOK only
fakes Running pods)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from prometheus_client.parser import text_string_to_metric_families

from finchsim.platform.base import Platform
from finchsim.platform.exporters.families import unix
from finchsim.platform.exporters.kube_state import KubeStateExporter, label_allowlist_of
from finchsim.project import Project
from tests.platform.conftest import NS, bring_up

pytestmark = pytest.mark.kwok
TEST_NS = "exporter-test"
NODE = "exporter-test-node"  # no finchsim.io/kubelet=up label: the kwok controller leaves it
Scrape = dict[tuple[str, frozenset[tuple[str, str]]], float]
KWOK_TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}


@pytest.fixture(scope="module")
def kwok(project: Project, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    platform = bring_up("kwok", project, tmp_path_factory.mktemp("kwok"), [])
    try:
        yield platform
    finally:
        platform.down()


@pytest.fixture(scope="module")
def api(kwok: Platform) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(str(kwok.kubeconfig()))
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": TEST_NS}})
    core.create_node({"metadata": {"name": NODE}})
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="module")
def exporter(kwok: Platform, project: Project) -> Iterator[KubeStateExporter]:
    manifest = project.cluster / "monitoring" / "kube-state-metrics" / "deployment.yaml"
    exporter = KubeStateExporter.from_kubeconfig(
        kwok.kubeconfig(), interval=1.0, label_allowlist=label_allowlist_of(manifest)
    )
    exporter.start()
    try:
        yield exporter
    finally:
        exporter.stop()


def scrape(url: str) -> Scrape:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def series(got: Scrape, name: str, **match: str) -> dict[frozenset[tuple[str, str]], float]:
    want = set(match.items())
    return {labels: v for (n, labels), v in got.items() if n == name and want <= labels}


def value(got: Scrape, name: str, **match: str) -> float | None:
    found = series(got, name, **match)
    return next(iter(found.values())) if len(found) == 1 else None


def listed(lister: Any, *args: str) -> list[dict[str, Any]]:
    """A list call's items as the API's JSON."""
    items: list[dict[str, Any]] = json.loads(lister(*args, _preload_content=False).data)["items"]
    return items


def until_equal(
    kwok: Platform, exporter: KubeStateExporter, expected: Any, actual: Any, what: str
) -> Scrape:
    """Scrape until `actual(scrape)` equals `expected()` (the API read again each time, or a
    fixed value); prints both."""
    last: dict[str, Any] = {}

    def same() -> Scrape | None:
        got = scrape(exporter.url)
        last["expected"], last["actual"] = expected(), actual(got)
        return got if last["expected"] == last["actual"] else None

    try:
        got = kwok.wait_for(same, 60, what, interval=0.5)
    finally:
        print(f"{what}:\n  expected: {last.get('expected')}\n  exporter: {last.get('actual')}")
    return got


def test_the_topology_is_exported_as_the_api_has_it(
    kwok: Platform, api: client.ApiClient, exporter: KubeStateExporter
) -> None:
    def from_api() -> dict[str, Any]:
        apps = client.AppsV1Api(api)
        deployments = listed(apps.list_namespaced_deployment, NS)
        statefulsets = listed(apps.list_namespaced_stateful_set, NS)
        hpas = listed(client.AutoscalingV2Api(api).list_namespaced_horizontal_pod_autoscaler, NS)
        cronjobs = listed(client.BatchV1Api(api).list_namespaced_cron_job, NS)
        return {
            "deployments": {
                d["metadata"]["name"]: (
                    d["spec"]["replicas"],
                    d["status"].get("availableReplicas", 0),
                    d["status"].get("unavailableReplicas", 0),
                )
                for d in deployments
            },
            "statefulsets": {
                s["metadata"]["name"]: (s["spec"]["replicas"], s["status"].get("readyReplicas", 0))
                for s in statefulsets
            },
            "hpas": {
                h["metadata"]["name"]: (
                    h["spec"].get("minReplicas", 1),
                    h["spec"]["maxReplicas"],
                    h["status"].get("currentReplicas", 0),
                    h["status"].get("desiredReplicas", 0),
                    sorted((c["type"], c["status"].lower()) for c in h["status"]["conditions"]),
                )
                for h in hpas
                if h["status"].get("conditions")
            },
            "cronjobs": {
                c["metadata"]["name"]: unix(c["metadata"]["creationTimestamp"]) for c in cronjobs
            },
        }

    def from_scrape(got: Scrape) -> dict[str, Any]:
        def v(name: str, **m: str) -> float | None:
            return value(got, name, namespace=NS, **m)

        hpas = {
            dict(k)["horizontalpodautoscaler"]
            for k in series(got, "kube_horizontalpodautoscaler_spec_max_replicas", namespace=NS)
        }
        return {
            "deployments": {
                d: (
                    v("kube_deployment_spec_replicas", deployment=d),
                    v("kube_deployment_status_replicas_available", deployment=d),
                    v("kube_deployment_status_replicas_unavailable", deployment=d),
                )
                for d in {
                    dict(k)["deployment"]
                    for k in series(got, "kube_deployment_spec_replicas", namespace=NS)
                }
            },
            "statefulsets": {
                s: (
                    v("kube_statefulset_replicas", statefulset=s),
                    v("kube_statefulset_status_replicas_ready", statefulset=s),
                )
                for s in {
                    dict(k)["statefulset"]
                    for k in series(got, "kube_statefulset_replicas", namespace=NS)
                }
            },
            "hpas": {
                h: (
                    v("kube_horizontalpodautoscaler_spec_min_replicas", horizontalpodautoscaler=h),
                    v("kube_horizontalpodautoscaler_spec_max_replicas", horizontalpodautoscaler=h),
                    v(
                        "kube_horizontalpodautoscaler_status_current_replicas",
                        horizontalpodautoscaler=h,
                    ),
                    v(
                        "kube_horizontalpodautoscaler_status_desired_replicas",
                        horizontalpodautoscaler=h,
                    ),
                    sorted(
                        (dict(k)["condition"], dict(k)["status"])
                        for k, x in series(
                            got,
                            "kube_horizontalpodautoscaler_status_condition",
                            namespace=NS,
                            horizontalpodautoscaler=h,
                        ).items()
                        if x == 1
                    ),
                )
                for h in hpas
                if series(
                    got,
                    "kube_horizontalpodautoscaler_status_condition",
                    namespace=NS,
                    horizontalpodautoscaler=h,
                )
            },
            "cronjobs": {
                dict(k)["cronjob"]: x
                for k, x in series(got, "kube_cronjob_created", namespace=NS).items()
            },
        }

    autoscaling = client.AutoscalingV2Api(api)
    kwok.wait_for(
        lambda: all(
            h["status"].get("conditions")
            for h in listed(autoscaling.list_namespaced_horizontal_pod_autoscaler, NS)
        ),
        90,
        "every HPA to report its conditions",
    )
    got = until_equal(kwok, exporter, from_api, from_scrape, f"workloads of {NS}")
    reference = from_api()
    assert reference["deployments"] and reference["statefulsets"] and reference["hpas"]
    assert reference["cronjobs"], "the backup CronJob"
    assert value(got, "kube_namespace_status_phase", namespace=NS, phase="Active") == 1
    nodes = listed(client.CoreV1Api(api).list_node)
    for node in nodes:
        cpu = node["status"].get("allocatable", {}).get("cpu")
        if cpu:
            exported = value(
                got, "kube_node_status_allocatable", node=node["metadata"]["name"], resource="cpu"
            )
            print(f"node {node['metadata']['name']}: allocatable cpu {cpu} -> {exported}")
            assert exported is not None


def test_scaling_a_deployment_is_followed(
    kwok: Platform, api: client.ApiClient, exporter: KubeStateExporter
) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(TEST_NS, _deployment("probe", 1))
    key = {"namespace": TEST_NS, "deployment": "probe"}

    def exported(got: Scrape) -> tuple[float | None, float | None]:
        return (
            value(got, "kube_deployment_spec_replicas", **key),
            value(got, "kube_deployment_status_replicas_available", **key),
        )

    until_equal(kwok, exporter, lambda: (1.0, 1.0), exported, "probe at 1 replica")
    apps.patch_namespaced_deployment_scale("probe", TEST_NS, {"spec": {"replicas": 3}})
    got = until_equal(kwok, exporter, lambda: (3.0, 3.0), exported, "probe scaled to 3")
    api_status = apps.read_namespaced_deployment("probe", TEST_NS).status
    assert api_status.available_replicas == 3
    pods = series(got, "kube_pod_labels", namespace=TEST_NS, label_app="probe")
    assert len(pods) == 3, pods  # --metric-labels-allowlist=pods=[app] from the manifest


def test_a_deployment_no_node_can_take_counts_unavailable_replicas(
    kwok: Platform, api: client.ApiClient, exporter: KubeStateExporter
) -> None:
    """The series DeploymentReplicasUnavailable alerts on, with the API's number."""
    apps = client.AppsV1Api(api)
    body = _deployment("unplaceable", 2)
    body["spec"]["template"]["spec"]["nodeSelector"] = {"finchsim.io/no-such-node": "x"}
    apps.create_namespaced_deployment(TEST_NS, body)
    key = {"namespace": TEST_NS, "deployment": "unplaceable"}

    def from_api() -> float:
        s = apps.read_namespaced_deployment("unplaceable", TEST_NS).status
        return float(s.unavailable_replicas or 0)

    got = until_equal(
        kwok,
        exporter,
        from_api,
        lambda got: value(got, "kube_deployment_status_replicas_unavailable", **key),
        "unavailable replicas of a Deployment no node can take",
    )
    assert value(got, "kube_deployment_status_replicas_unavailable", **key) == 2
    pending = series(got, "kube_pod_status_unschedulable", namespace=TEST_NS)
    assert len(pending) == 2, pending


def test_container_waiting_and_terminated_reasons_follow_the_pod_status(
    kwok: Platform, api: client.ApiClient, exporter: KubeStateExporter
) -> None:
    core = client.CoreV1Api(api)
    image = "registry.invalid/finch/backend:missing"
    core.create_namespaced_pod(
        TEST_NS,
        {
            "metadata": {"name": "stuck", "labels": {"app": "stuck"}},
            "spec": {
                "nodeName": NODE,
                "tolerations": [{"operator": "Exists"}],
                "containers": [{"name": "app", "image": image}],
            },
        },
    )
    key = {"namespace": TEST_NS, "pod": "stuck", "container": "app"}

    def report(
        state: dict[str, Any], restarts: int = 0, last: dict[str, Any] | None = None
    ) -> None:
        status = {
            "name": "app",
            "image": image,
            "imageID": "",
            "ready": False,
            "restartCount": restarts,
            "state": state,
            "lastState": last or {},
        }
        core.patch_namespaced_pod_status(
            "stuck", TEST_NS, {"status": {"phase": "Pending", "containerStatuses": [status]}}
        )

    def reasons(got: Scrape) -> dict[str, float]:
        return {
            dict(k)["reason"]: x
            for k, x in series(got, "kube_pod_container_status_waiting_reason", **key).items()
        }

    message = f'Failed to pull image "{image}": not found'
    report({"waiting": {"reason": "ErrImagePull", "message": message}})
    until_equal(kwok, exporter, lambda: {"ErrImagePull": 1.0}, reasons, "ErrImagePull")
    report(
        {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}}
    )
    until_equal(kwok, exporter, lambda: {"ImagePullBackOff": 1.0}, reasons, "ImagePullBackOff")

    oom = {
        "terminated": {
            "reason": "OOMKilled",
            "exitCode": 137,
            "startedAt": "2026-12-02T10:00:00Z",
            "finishedAt": "2026-12-02T10:01:00Z",
        }
    }
    report(
        {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}}, restarts=3, last=oom
    )

    def crash(got: Scrape) -> tuple[Any, ...]:
        return (
            reasons(got),
            value(got, "kube_pod_container_status_restarts_total", **key),
            value(
                got, "kube_pod_container_status_last_terminated_reason", **key, reason="OOMKilled"
            ),
            value(got, "kube_pod_container_status_last_terminated_exitcode", **key),
        )

    until_equal(
        kwok,
        exporter,
        lambda: ({"CrashLoopBackOff": 1.0}, 3.0, 1.0, 137.0),
        crash,
        "CrashLoopBackOff after OOMKilled",
    )
    pod = core.read_namespaced_pod_status("stuck", TEST_NS).status.container_statuses[0]
    assert pod.state.waiting.reason == "CrashLoopBackOff" and pod.restart_count == 3


def test_pvc_cronjob_and_job_follow_the_api(
    kwok: Platform, api: client.ApiClient, exporter: KubeStateExporter
) -> None:
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    core.create_namespaced_persistent_volume_claim(
        TEST_NS,
        {
            "metadata": {"name": "data"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    template = _deployment("x", 1)["spec"]["template"]
    template["spec"]["restartPolicy"] = "Never"
    batch.create_namespaced_cron_job(
        TEST_NS,
        {
            "metadata": {"name": "nightly"},
            "spec": {
                "schedule": "*/5 * * * *",
                "timeZone": "UTC",
                "jobTemplate": {"spec": {"template": template}},
            },
        },
    )
    batch.create_namespaced_job(
        TEST_NS, {"metadata": {"name": "once"}, "spec": {"template": template, "backoffLimit": 0}}
    )

    def from_api() -> tuple[Any, ...]:
        pvc = core.read_namespaced_persistent_volume_claim("data", TEST_NS)
        cj = batch.read_namespaced_cron_job("nightly", TEST_NS)
        job = batch.read_namespaced_job("once", TEST_NS).status
        created = cj.metadata.creation_timestamp.timestamp()
        next_run = (int(created) // 300 + 1) * 300  # */5 in UTC, after creation (no run yet)
        return (
            pvc.status.phase,
            2**30,
            float(int(created)),
            float(next_run),
            float(job.active or 0),
            float(job.succeeded or 0),
        )

    def from_scrape(got: Scrape) -> tuple[Any, ...]:
        phases = [
            dict(k)["phase"]
            for k, x in series(
                got,
                "kube_persistentvolumeclaim_status_phase",
                namespace=TEST_NS,
                persistentvolumeclaim="data",
            ).items()
            if x == 1
        ]
        cj = {"namespace": TEST_NS, "cronjob": "nightly"}
        job = {"namespace": TEST_NS, "job_name": "once"}
        return (
            phases[0] if len(phases) == 1 else phases,
            value(
                got,
                "kube_persistentvolumeclaim_resource_requests_storage_bytes",
                namespace=TEST_NS,
                persistentvolumeclaim="data",
            ),
            value(got, "kube_cronjob_created", **cj),
            value(got, "kube_cronjob_next_schedule_time", **cj),
            value(got, "kube_job_status_active", **job),
            value(got, "kube_job_status_succeeded", **job),
        )

    until_equal(
        kwok,
        exporter,
        from_api,
        from_scrape,
        "PVC phase/size, CronJob created/next, Job active/succeeded",
    )


def test_a_scrape_is_served_from_the_cache(exporter: KubeStateExporter) -> None:
    """A scrape hands out the last refresh: fast, and the lists go on succeeding meanwhile."""
    first = scrape(exporter.url)
    started = time.monotonic()
    for _ in range(10):
        scrape(exporter.url)
    each = (time.monotonic() - started) / 10
    time.sleep(2.5)
    later = scrape(exporter.url)
    lists = "kube_state_metrics_list_total"
    before = value(first, lists, resource="pods", result="success") or 0
    after = value(later, lists, resource="pods", result="success") or 0
    print(
        f"scrape {each * 1000:.0f} ms; pod lists {before:.0f} -> {after:.0f};"
        f" errors {exporter.errors()}"
    )
    assert after >= before + 1
    assert series(later, lists, result="error") == {}
    assert each < 1.0


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "tolerations": [KWOK_TOLERATION],
                    "containers": [
                        {
                            "name": "app",
                            "image": "finch/probe:1",
                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                        }
                    ],
                },
            },
        },
    }


def test_the_alert_rules_fire_on_the_exported_series(
    kwok: Platform,
    api: client.ApiClient,
    exporter: KubeStateExporter,
    project: Project,
    tmp_path: Path,
) -> None:
    """Real Prometheus scrapes the exporter and evaluates cluster/monitoring's Kubernetes rules
    (`for:` shortened to 0s for the test): a Deployment no node can take raises
    DeploymentReplicasUnavailable and DeploymentUnavailable, a crash-looping container
    PodCrashLooping; the healthy Finch Deployments raise nothing."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (make setup installs it)")
    ns = "finch-alerting-test"  # the rules select namespace=~"finch-.*"
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace({"metadata": {"name": ns}})
    body = _deployment("unplaceable", 1)
    body["spec"]["template"]["spec"]["nodeSelector"] = {"finchsim.io/no-such-node": "x"}
    apps.create_namespaced_deployment(ns, body)
    core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": "crashing"},
            "spec": {
                "nodeName": NODE,
                "tolerations": [{"operator": "Exists"}],
                "containers": [{"name": "app", "image": "finch/backend:1"}],
            },
        },
    )
    waiting = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}}
    status = {"name": "app", "image": "finch/backend:1", "imageID": "", "ready": False}
    core.patch_namespaced_pod_status(
        "crashing",
        ns,
        {"status": {"containerStatuses": [{**status, "restartCount": 1, "state": waiting}]}},
    )

    rules = yaml.safe_load(
        (project.cluster / "monitoring/prometheus/rules/kubernetes.yml").read_text()
    )
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "0s"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    target = exporter.url.removeprefix("http://").removesuffix("/metrics")
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": ["rules.yml"],
                "scrape_configs": [
                    {
                        "job_name": "kube-state-metrics",
                        "honor_labels": True,
                        "static_configs": [{"targets": [target]}],
                    }
                ],
            }
        )
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    expected = {
        ("DeploymentReplicasUnavailable", ns, "unplaceable"),
        ("DeploymentUnavailable", ns, "unplaceable"),
        ("PodCrashLooping", ns, "crashing"),
    }

    def firing() -> set[tuple[str, str, str]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/alerts", timeout=2) as r:
                alerts = json.loads(r.read())["data"]["alerts"]
        except OSError:
            return set()
        return {
            (
                a["labels"]["alertname"],
                a["labels"].get("namespace", ""),
                a["labels"].get("deployment") or a["labels"].get("pod", ""),
            )
            for a in alerts
            if a["state"] == "firing"
        }

    try:
        seen = kwok.wait_for(lambda: firing() >= expected and firing(), 90, "the alerts to fire")
        print("firing:", *sorted(seen), sep="\n  ")
        unexpected = {a for a in seen if a[0].startswith("Deployment") and a[1] == NS}
        assert unexpected == set(), unexpected
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
