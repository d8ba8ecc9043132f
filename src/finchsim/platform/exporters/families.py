"""Metric families declared once (name, type, help, label names) and filled from API objects.

The helpers reproduce kube-state-metrics v2's conventions (`internal/store/utils.go`): a
condition becomes three series `status="true"|"false"|"unknown"` with the matching one 1;
quantities use resource.Quantity's rounding (`MilliValue()`/`Value()` round up); timestamps
are whole Unix seconds (`Time.Unix()`); resource names are sanitised into label values."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from kubernetes.utils.quantity import parse_quantity
from prometheus_client.core import Metric

Obj = dict[str, Any]
CONDITION_STATUSES = ("true", "false", "unknown")
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


@dataclass(frozen=True)
class Family:
    """One metric family: its exposed name, help, label names and type. `dynamic` families
    (`*_labels`) carry extra `label_<key>` labels besides the declared ones."""

    name: str
    help: str
    labels: tuple[str, ...]
    type: str = "gauge"
    dynamic: bool = False


class Samples:
    """Samples collected per family, in declaration order; `metrics()` builds the families
    prometheus_client exposes. Adding to an undeclared family, or with the wrong number of
    label values, is a programming error and raises."""

    def __init__(self, families: Iterable[Family]) -> None:
        self._families = {f.name: f for f in families}
        self._rows: dict[str, list[tuple[dict[str, str], float]]] = {n: [] for n in self._families}

    def add(
        self,
        name: str,
        values: Sequence[str],
        value: float,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        family = self._families[name]
        if len(values) != len(family.labels):
            raise ValueError(f"{name}: {len(values)} label values for {family.labels}")
        if extra and not family.dynamic:
            raise ValueError(f"{name}: extra labels on a family with fixed labels")
        labels = dict(zip(family.labels, values, strict=True))
        labels.update(extra or {})
        self._rows[name].append((labels, float(value)))

    def metrics(self) -> list[Metric]:
        out: list[Metric] = []
        for name, family in self._families.items():
            if family.type == "counter":
                # prometheus_client names a counter family without `_total`; its samples keep it.
                metric = Metric(name.removesuffix("_total"), family.help, "counter")
            else:
                metric = Metric(name, family.help, family.type)
            for labels, value in self._rows[name]:
                metric.add_sample(name, labels, value)
            out.append(metric)
        return out


def names(families: Iterable[Family]) -> list[str]:
    return [f.name for f in families]


def conditions(status: str | None) -> Iterator[tuple[str, float]]:
    """addConditionMetrics: one (status label, value) per possible condition status."""
    given = (status or "").lower()
    for candidate in CONDITION_STATUSES:
        yield candidate, float(given == candidate)


def unix(value: str | None) -> float | None:
    """An RFC 3339 API timestamp as whole Unix seconds; None when absent."""
    if not value:
        return None
    return float(math.floor(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()))


def _quantity(value: Any) -> Decimal:
    return Decimal(parse_quantity(value))


def milli_value(value: Any) -> float:
    """Quantity.MilliValue() / 1000 (MilliValue rounds up to a whole milli-unit)."""
    return math.ceil(_quantity(value) * 1000) / 1000


def whole_value(value: Any) -> float:
    """Quantity.Value(): rounded up to a whole unit."""
    return float(math.ceil(_quantity(value)))


def sanitize(name: str) -> str:
    """sanitizeLabelName: characters Prometheus forbids in names become `_`."""
    return _INVALID_LABEL_CHARS.sub("_", name)


def _extended(resource: str) -> bool:
    """v1helper.IsExtendedResourceName: a qualified name outside the kubernetes.io domain."""
    return (
        "/" in resource
        and "kubernetes.io/" not in resource
        and not resource.startswith("requests.")
    )


def resource_values(
    quantities: Mapping[str, Any] | None, *, memory_milli: bool = False
) -> Iterator[tuple[str, str, float]]:
    """(resource label, unit label, value) per resource as kube-state-metrics writes them:
    cpu in cores; memory, storage, ephemeral-storage, hugepages-* and attachable-volumes-* in
    bytes; pods and extended resources as integers. Pod requests/limits use Value() for bytes
    (`pod.go`); node allocatable/capacity use MilliValue()/1000 throughout (`node.go`)."""
    for resource, raw in (quantities or {}).items():
        as_bytes = milli_value(raw) if memory_milli else whole_value(raw)
        if resource == "cpu":
            yield "cpu", "core", milli_value(raw)
        elif resource in ("memory", "storage", "ephemeral-storage"):
            yield sanitize(resource), "byte", as_bytes
        elif resource == "pods" and memory_milli:
            yield "pods", "integer", milli_value(raw)
        elif resource.startswith(("hugepages-", "attachable-volumes-")):
            yield sanitize(resource), "byte", as_bytes
        elif _extended(resource):
            yield sanitize(resource), "integer", as_bytes


def allowed_labels(labels: Mapping[str, str] | None, allowed: Sequence[str]) -> dict[str, str]:
    """createPrometheusLabelKeysValues: the allow-listed Kubernetes labels an object carries,
    as `label_<sanitised key>` (`*` allows every label)."""
    present = labels or {}
    keys = sorted(present) if "*" in allowed else [k for k in allowed if k in present]
    return {f"label_{sanitize(k)}": present[k] for k in keys}


def meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def status(obj: Obj) -> Obj:
    return obj.get("status") or {}
