"""The load model: what an offered request rate costs each container, per pod.

For a platform whose pods run no processes (KWOK), CPU and memory come from here:

    cpu(pod)    = min(idle_cpu + Σ_host rps[host] * cpu_seconds_per_request[host] / ready, limit)
    memory(pod) = idle_memory  + Σ_host rps[host] * memory_bytes_per_rps[host]     / ready

per container, where `ready` is the workload's ready replicas (a Service spreads its requests
over the ready endpoints only) and `limit` its CPU limit (the kernel throttles a container at
its quota, so no pod is seen above it). The costs are measured on the local platform from a real
run (`analysis/load-model.yaml` says which run and how), for the request mix of that run's load
profile: a what-if that changes the rate keeps the mix."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kubernetes.utils.quantity import parse_quantity
from pydantic import Field, field_validator

from finchsim.inputs import Document, Strict, load_document

MODEL_FILE = "analysis/load-model.yaml"


def _quantity(value: str) -> str:
    parse_quantity(value)  # ValueError names the bad text
    return value


class Cost(Strict):
    """What one request per second through an entry point costs one container."""

    cpuSecondsPerRequest: float = Field(ge=0)
    memoryBytesPerRps: float = Field(default=0, ge=0)


class Idle(Strict):
    """A pod's container with no traffic."""

    cpu: str = "1m"
    memory: str = "1Mi"

    _quantities = field_validator("cpu", "memory")(_quantity)


class ContainerModel(Strict):
    idle: Idle = Idle()
    # Ingress host -> cost of one request through it (absent: that host does not reach it).
    perHost: dict[str, Cost] = Field(default_factory=dict)


class Calibration(Strict):
    """Where the costs were measured: a person can re-run it and compare."""

    run: str
    overlay: str
    profile: str
    measured: str  # date
    method: str


class LoadModelFile(Document):
    kind: Literal["LoadModel"]
    description: str
    calibration: Calibration
    # workload name -> container name -> model
    workloads: dict[str, dict[str, ContainerModel]]


@dataclass(frozen=True)
class Usage:
    cpu_m: float  # millicores
    memory_bytes: float


@dataclass(frozen=True)
class LoadModel:
    """The loaded model, ready for `usage`."""

    workloads: Mapping[str, Mapping[str, ContainerModel]]

    def usage(
        self,
        workload: str,
        container: str,
        offered_rps: Mapping[str, float],
        ready_replicas: int,
        cpu_limit_m: float = 0.0,
    ) -> Usage:
        """One pod's container under `offered_rps` (Ingress host -> requests per second)
        spread over `ready_replicas` pods; capped at `cpu_limit_m` when it is above 0."""
        model = self.workloads.get(workload, {}).get(container)
        if model is None:
            return Usage(1.0, float(2**20))  # kwok's own default for a container we do not model
        share = 1.0 / max(ready_replicas, 1)
        cpu = float(parse_quantity(model.idle.cpu)) * 1000
        memory = float(parse_quantity(model.idle.memory))
        for host, rps in offered_rps.items():
            cost = model.perHost.get(host)
            if cost is not None:
                cpu += rps * cost.cpuSecondsPerRequest * 1000 * share
                memory += rps * cost.memoryBytesPerRps * share
        if cpu_limit_m > 0:
            cpu = min(cpu, cpu_limit_m)
        return Usage(cpu, memory)


def load_model(path: Path, shown_as: str | None = None) -> LoadModel:
    """Load `analysis/load-model.yaml`; InputError lists every problem with its field."""
    doc = load_document(path, LoadModelFile, shown_as)
    return LoadModel(doc.workloads)
