"""Does the pure HPA model (`finchsim.models.hpa`) decide what the real HPA decides?

Five CPU traces run at once on a kwok cluster, each on its own Deployment and HPA (min 2, max
10, 60 % of a 500m request): ramp (2 → 10), plateau, drop, spike, and one where two pods turn
unready for a minute. A trace gives the total CPU demand over time, spread over the ready pods and
written as their KWOK usage; the real kube-controller-manager (default 15 s sync) reads it
through metrics-server (15 s resolution) and scales.

The model is fed exactly what the real HPA reads, at the same moments: each time
metrics-server publishes a new sample (its PodMetrics timestamps move), the model syncs on
those pod metrics, the pods as the API shows them and the Deployment's replicas; with equal
periods, one real sync falls between two samples and used the first, so the real decision for
sample j is the Deployment's replicas just before sample j+1. A period agrees when both say the
same replica count. `now` for the model is the real HPA's sync time, known from
`status.lastScaleTime` after its first rescale (syncs then repeat every period)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config

from finchsim.models.hpa import DEFAULT_SETTINGS, HpaState, PodSample, sync
from finchsim.models.hpa_model import Hpa, HpaMetric
from finchsim.platform.controlplane.kwokctl import USAGE_ANNOTATION

NAMESPACE = "hpa-fidelity"
REQUEST_M = 500
TARGET = 60
MIN_REPLICAS, MAX_REPLICAS = 2, 10
DURATION = 360.0
CONTAINER = "app"
IDLE_M = 10  # what an unready pod still uses


@dataclass(frozen=True)
class Trace:
    name: str
    demand: Callable[[float], float]  # total millicores wanted at t seconds
    behavior: dict[str, Any] | None = None  # spec.behavior of its HPA
    unready: tuple[float, float] | None = None  # the two newest pods unready in [from, to)


def _ramp(t: float) -> float:
    """400m to 3400m over 4 minutes: past what 10 pods hold at the target, so 2 -> 10."""
    return 400 + min(t, 240) / 240 * 3000


TRACES = (
    Trace("ramp", _ramp),
    Trace("plateau", lambda t: 1500),
    Trace(
        "drop",
        lambda t: 2400 if t < 150 else 300,
        behavior={"scaleDown": {"stabilizationWindowSeconds": 60}},
    ),
    Trace(
        "spike",
        lambda t: 3000 if 120 <= t < 150 else 500,
        behavior={"scaleDown": {"stabilizationWindowSeconds": 60}},
    ),
    Trace("unready", lambda t: 1800, unready=(90, 150)),
)


@dataclass
class TraceRun:
    trace: Trace
    spec: Hpa
    state: HpaState = field(default_factory=HpaState)
    last_sample: float = 0.0
    pending: int | None = None  # the model's decision for the last sample
    periods: list[tuple[float, int, int]] = field(default_factory=list)  # (t, model, real)
    replicas: int = MIN_REPLICAS  # the Deployment's spec.replicas, as last polled
    sync_anchor: float | None = None  # a real sync time (from lastScaleTime)


def _objects(trace: Trace) -> list[dict[str, Any]]:
    labels = {"app": trace.name}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": trace.name, "namespace": NAMESPACE},
        "spec": {
            "replicas": MIN_REPLICAS,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": CONTAINER,
                            "image": "registry.k8s.io/pause:3.10",
                            "resources": {"requests": {"cpu": f"{REQUEST_M}m"}},
                        }
                    ]
                },
            },
        },
    }
    hpa: dict[str, Any] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": trace.name, "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": trace.name},
            "minReplicas": MIN_REPLICAS,
            "maxReplicas": MAX_REPLICAS,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": TARGET},
                    },
                }
            ],
        },
    }
    if trace.behavior:
        hpa["spec"]["behavior"] = trace.behavior
    return [deployment, hpa]


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


class Fidelity:
    """One comparison run against the cluster of `kubeconfig` (a kwok platform that is up)."""

    def __init__(self, kubeconfig: Path, period: float, log: Callable[[str], None]) -> None:
        api = config.new_client_from_config(str(kubeconfig))
        self.api = api
        self.core = client.CoreV1Api(api)
        self.apps = client.AppsV1Api(api)
        self.autoscaling = client.AutoscalingV2Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.period = period
        self.log = log
        self.runs = {
            t.name: TraceRun(
                t,
                Hpa(
                    t.name,
                    t.name,
                    MIN_REPLICAS,
                    MAX_REPLICAS,
                    (HpaMetric("cpu", TARGET),),
                    dict(t.behavior or {}),
                ),
            )
            for t in TRACES
        }
        self.unready_marked: set[str] = set()

    def setup(self) -> None:
        self.core.create_namespace({"metadata": {"name": NAMESPACE}})
        for trace in TRACES:
            deployment, hpa = _objects(trace)
            self.apps.create_namespaced_deployment(NAMESPACE, deployment)
            self.autoscaling.create_namespaced_horizontal_pod_autoscaler(NAMESPACE, hpa)

    def run(self, duration: float = DURATION) -> dict[str, tuple[int, int]]:
        """Drive every trace for `duration` s; return trace -> (agreeing periods, periods)."""
        started = time.time()
        while (now := time.time()) - started < duration:
            pods = self.core.list_namespaced_pod(NAMESPACE).items
            metrics = self.custom.list_namespaced_custom_object(
                "metrics.k8s.io", "v1beta1", NAMESPACE, "pods"
            )["items"]
            deployments = {
                d.metadata.name: d for d in self.apps.list_namespaced_deployment(NAMESPACE).items
            }
            hpas = {
                h.metadata.name: h
                for h in self.autoscaling.list_namespaced_horizontal_pod_autoscaler(NAMESPACE).items
            }
            for name, run in self.runs.items():
                mine = [p for p in pods if (p.metadata.labels or {}).get("app") == name]
                self._drive(run, mine, now - started)
                self._observe(run, mine, metrics, deployments[name], hpas[name])
            time.sleep(0.5)
        return {
            name: (sum(1 for _, m, r in run.periods if m == r), len(run.periods))
            for name, run in self.runs.items()
        }

    def _drive(self, run: TraceRun, pods: list[Any], t: float) -> None:
        trace = run.trace
        live = [p for p in pods if p.metadata.deletion_timestamp is None and p.spec.node_name]
        if trace.unready is not None:
            self._toggle_unready(live, trace.unready[0] <= t < trace.unready[1])
        ready = [p for p in live if _ready(p)]
        each = trace.demand(t) / max(len(ready), 1)
        key = USAGE_ANNOTATION["cpu"] + CONTAINER
        for pod in live:
            value = f"{round(each if _ready(pod) else IDLE_M)}m"
            if (pod.metadata.annotations or {}).get(key) != value:
                self.core.patch_namespaced_pod(
                    pod.metadata.name, NAMESPACE, {"metadata": {"annotations": {key: value}}}
                )

    def _toggle_unready(self, live: list[Any], unready: bool) -> None:
        """Mark the two newest pods unready (as a failing readiness probe would) or ready."""
        newest = sorted(live, key=lambda p: p.metadata.creation_timestamp)[-2:]
        targets = {p.metadata.name for p in newest} if unready else set(self.unready_marked)
        for pod in live:
            name = pod.metadata.name
            if name not in targets or (name in self.unready_marked) == unready:
                continue
            status = "False" if unready else "True"
            conditions = [
                c for c in pod.status.conditions or [] if c.type not in ("Ready", "ContainersReady")
            ]
            conditions += [
                client.V1PodCondition(type="Ready", status=status),
                client.V1PodCondition(type="ContainersReady", status=status),
            ]
            pod.status.conditions = conditions
            self.core.replace_namespaced_pod_status(name, NAMESPACE, pod)
            (self.unready_marked.add if unready else self.unready_marked.discard)(name)

    def _observe(
        self,
        run: TraceRun,
        pods: list[Any],
        metrics: list[dict[str, Any]],
        deployment: Any,
        hpa: Any,
    ) -> None:
        scaled = _ts(hpa.status.last_scale_time)
        if scaled is not None:
            run.sync_anchor = scaled
        samples = {
            m["metadata"]["name"]: m
            for m in metrics
            if m["metadata"]["name"] in {p.metadata.name for p in pods}
        }
        newest = max((_parse(m["timestamp"]) for m in samples.values()), default=0.0)
        if newest <= run.last_sample + self.period / 2:
            run.replicas = deployment.spec.replicas
            return
        # A new metrics sample: the previous one's real decision is the replicas now.
        if run.pending is not None:
            run.periods.append((newest, run.pending, run.replicas))
        run.last_sample = newest
        decision = sync(
            run.spec,
            run.state,
            run.replicas,
            self._samples(pods, samples),
            self._sync_time(run, newest),
            DEFAULT_SETTINGS,
        )
        run.state = decision.state
        run.pending = decision.final_replicas
        run.replicas = deployment.spec.replicas

    def _sync_time(self, run: TraceRun, sample: float) -> float:
        """The real HPA's first sync after `sample`: anchor + k periods (or the sample time)."""
        if run.sync_anchor is None:
            return sample
        k = int((sample - run.sync_anchor) // self.period) + 1
        return run.sync_anchor + k * self.period

    def _samples(self, pods: list[Any], metrics: dict[str, dict[str, Any]]) -> list[PodSample]:
        found = []
        for pod in pods:
            ready_cond = next((c for c in pod.status.conditions or [] if c.type == "Ready"), None)
            m = metrics.get(pod.metadata.name)
            usage = {}
            if m is not None:
                usage["cpu"] = sum(_millicores(c["usage"]["cpu"]) for c in m["containers"])
            found.append(
                PodSample(
                    name=pod.metadata.name,
                    ready=_ready(pod),
                    start_time=_ts(pod.status.start_time),
                    ready_transition=_ts(ready_cond.last_transition_time) if ready_cond else None,
                    usage=usage,
                    requests={"cpu": REQUEST_M},
                    phase=pod.status.phase or "Pending",
                    deleting=pod.metadata.deletion_timestamp is not None,
                    sample_time=_parse(m["timestamp"]) if m is not None else None,
                    sample_window=_seconds(m["window"]) if m is not None else self.period,
                )
            )
        return found

    def close(self) -> None:
        self.api.close()


def _parse(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _seconds(window: str) -> float:
    return float(window.rstrip("s"))


def _millicores(quantity: str) -> int:
    from kubernetes.utils.quantity import parse_quantity

    return int(parse_quantity(quantity) * 1000)
