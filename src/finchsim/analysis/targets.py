"""The targets the report judges against (`analysis/targets.yaml`), as a strict model."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from finchsim.durations import parse_duration
from finchsim.inputs import Document, Strict, load_document


class Recovery(Strict):
    rto: str
    rpo: str

    @field_validator("rto", "rpo")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def rto_seconds(self) -> float:
        return parse_duration(self.rto)

    @property
    def rpo_seconds(self) -> float:
        return parse_duration(self.rpo)


class Ingress(Strict):
    rateLimitPerIpPerMinute: int = Field(gt=0)


class AutoscalingTarget(Strict):
    deployment: str
    cpuUtilization: int | None = Field(default=None, gt=0, le=100)
    memoryUtilization: int | None = Field(default=None, gt=0, le=100)


class Slo(Strict):
    """An alert-profile style objective: `expr op threshold` must hold over the run."""

    name: str
    expr: str
    threshold: float
    op: Literal["<", "<=", ">", ">="]
    severity: Literal["info", "warning", "critical"]
    description: str


class Targets(Document):
    kind: Literal["Targets"]
    recovery: Recovery
    ingress: Ingress
    autoscaling: tuple[AutoscalingTarget, ...] = ()
    slos: tuple[Slo, ...] = ()


def load_targets(path: Path, shown_as: str | None = None) -> Targets:
    """Load and validate a Targets file; raises InputError listing every problem."""
    return load_document(path, Targets, shown_as)
