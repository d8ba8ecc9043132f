"""The bare service starts of `finchsim bench --only local`, on the real local platform.

The platform comes up with the overlay's objects minus the workload controllers' (no
Deployments, StatefulSets, CronJobs, autoscalers or disruption budgets; Namespaces, ConfigMaps,
Secrets, Services, claims and Ingresses stay), so nothing starts a pod by itself. Then each
workload's first pod is created alone from its pod template, in dependency order (StatefulSets
first: the backend needs PostgreSQL and Redis), and timed from its creation to the API
reporting it Ready; it keeps running while the next one starts. Their sum is the floor a
strictly sequential start of the workloads could reach on this platform."""

from __future__ import annotations

import copy
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from kubernetes import client, config

from finchsim.errors import PlatformError
from finchsim.platform.base import Capability, Platform
from finchsim.platform.manifests import Rendered, render
from finchsim.platform.registry import PlatformOptions, create
from finchsim.project import Project

WORKLOADS = ("StatefulSet", "Deployment")
# What a workload controller acts on: none of it may start, scale or guard a pod here.
CONTROLLER_KINDS = frozenset(
    {
        *WORKLOADS,
        "DaemonSet",
        "ReplicaSet",
        "Job",
        "CronJob",
        "HorizontalPodAutoscaler",
        "VerticalPodAutoscaler",
        "PodDisruptionBudget",
    }
)
START_TIMEOUT_S = 120.0
READ_EVERY_S = 0.1
POLL_EVERY_S = 0.5  # platform.poll (volume provisioning, the edge), as `up` waits


def start_order(objects: Iterable[Rendered]) -> list[dict[str, Any]]:
    """The overlay's workloads in the order their pods start alone: StatefulSets (the data
    stores everything else needs) first, then the Deployments; by name within each."""
    workloads = [o.obj for o in objects if o.kind in WORKLOADS]
    return sorted(workloads, key=lambda w: (WORKLOADS.index(w["kind"]), w["metadata"]["name"]))


def bare_pod(workload: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One Pod from `workload`'s pod template, and the claims it needs first.

    The template's labels stay (its Services select the pod). A StatefulSet's pod is what its
    controller makes for ordinal 0: named `<set>-0`, with its hostname, subdomain and pod-name
    labels, and each volumeClaimTemplate as the claim `<template>-<set>-0` (labelled with the
    set's selector) mounted in place of the template's volume of that name."""
    kind, meta, spec = workload["kind"], workload["metadata"], workload["spec"]
    template = copy.deepcopy(spec["template"])
    namespace = meta.get("namespace") or "default"
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    pod_spec = template["spec"]
    claims: list[dict[str, Any]] = []
    if kind == "StatefulSet":
        name = f"{meta['name']}-0"
        labels |= {"statefulset.kubernetes.io/pod-name": name, "apps.kubernetes.io/pod-index": "0"}
        pod_spec["hostname"] = name
        if spec.get("serviceName"):
            pod_spec["subdomain"] = spec["serviceName"]
        volumes = list(pod_spec.get("volumes") or [])
        for tmpl in spec.get("volumeClaimTemplates") or []:
            volume, claim = tmpl["metadata"]["name"], f"{tmpl['metadata']['name']}-{name}"
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            claims.append(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": claim, "namespace": namespace, "labels": selector},
                    "spec": copy.deepcopy(tmpl["spec"]),
                }
            )
            volumes = [v for v in volumes if v["name"] != volume]
            volumes.append({"name": volume, "persistentVolumeClaim": {"claimName": claim}})
        pod_spec["volumes"] = volumes
    else:
        name = f"{meta['name']}-bare"
    annotations = (template.get("metadata") or {}).get("annotations")
    pod_meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if annotations:
        pod_meta["annotations"] = annotations
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": pod_spec}
    return pod, claims


def bare_start_times(
    project: Project, overlay: str, say: Callable[[str], None]
) -> tuple[dict[str, float], float | None]:
    """Seconds from creation to Ready of each workload's pod started alone (by workload), and
    how long after the bare platform's `up` returned its Prometheus answered ready (None
    without one)."""
    options = PlatformOptions(project, overlay, without_kinds=CONTROLLER_KINDS)
    platform = create("local", options)
    workloads = start_order(render(project, overlay))
    times: dict[str, float] = {}
    platform.up()
    try:
        monitoring = _prometheus_ready_after(platform)
        api = config.new_client_from_config(str(platform.kubeconfig()))
        try:
            core = client.CoreV1Api(api)
            for workload in workloads:
                pod, claims = bare_pod(workload)
                started = time.monotonic()
                for claim in claims:
                    core.create_namespaced_persistent_volume_claim(
                        claim["metadata"]["namespace"], claim
                    )
                core.create_namespaced_pod(pod["metadata"]["namespace"], pod)
                _wait_ready(platform, pod["metadata"]["namespace"], pod["metadata"]["name"])
                name = workload["metadata"]["name"]
                times[name] = time.monotonic() - started
                say(f"bare start: {name} {times[name]:.1f} s")
        finally:
            api.close()
    finally:
        platform.down()
    return times, monitoring


def _wait_ready(platform: Platform, namespace: str, name: str) -> None:
    """Until the API says the pod is Ready (polling the pod every 0.1 s, the platform's own
    duties every 0.5 s); PlatformError with why it is not after START_TIMEOUT_S."""
    started = polled = time.monotonic()
    while True:
        now = time.monotonic()
        found = [p for p in platform.pods() if p.namespace == namespace and p.name == name]
        if found and found[0].ready:
            return
        if now - started > START_TIMEOUT_S:
            state = found[0] if found else None
            raise PlatformError(
                f"bench: pod {namespace}/{name} not ready after {START_TIMEOUT_S:.0f} s: {state}"
            )
        if now - polled >= POLL_EVERY_S:
            platform.poll()
            polled = now
        time.sleep(READ_EVERY_S)


def _prometheus_ready_after(platform: Platform) -> float | None:
    """Seconds until the platform's Prometheus answers /-/ready, from now (0 when it already
    does): what its monitoring adds on top of the platform's own start."""
    if Capability.PROMETHEUS not in platform.capabilities:
        return None
    url = platform.prometheus_url() + "/-/ready"
    started = time.monotonic()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:
                if response.status == 200:
                    return time.monotonic() - started
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() - started > START_TIMEOUT_S:
            raise PlatformError(f"bench: {url} not ready after {START_TIMEOUT_S:.0f} s")
        time.sleep(READ_EVERY_S)
