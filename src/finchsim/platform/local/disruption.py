"""PodDisruptionBudgets as the eviction API applies them (pkg/controller/disruption).

An eviction is allowed when the budget covering the pod has disruptions left:
currentHealthy - desiredHealthy > 0, where desiredHealthy is minAvailable, or the expected
pods (the owners' replicas) minus maxUnavailable; percentages round up. Each eviction uses one
disruption until the evicted pod's replacement is ready again."""

from __future__ import annotations

from dataclasses import dataclass

from finchsim.platform.local.rollout import scaled
from finchsim.platform.topology import Pdb


@dataclass(frozen=True)
class Budget:
    pdb: str
    healthy: int
    desired_healthy: int
    expected: int

    @property
    def allowed(self) -> int:
        return max(0, self.healthy - self.desired_healthy)

    def explain(self) -> str:
        return (
            f"PodDisruptionBudget {self.pdb} allows {self.allowed} disruption(s): "
            f"{self.healthy} healthy of {self.expected} expected, needs "
            f"{self.desired_healthy}"
        )


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """A label selector's matchLabels: every pair present (an empty selector selects none)."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def budget(pdb: Pdb, pods: list[tuple[dict[str, str], bool]], expected: int) -> Budget:
    """`pods`: (labels, ready) of every live pod in the namespace; `expected`: the summed
    replicas of the owners of the pods the budget selects."""
    healthy = sum(1 for labels, ready in pods if ready and selects(pdb.selector, labels))
    if pdb.min_available is not None:
        desired = scaled(pdb.min_available, expected, round_up=True)
    elif pdb.max_unavailable is not None:
        desired = max(0, expected - scaled(pdb.max_unavailable, expected, round_up=True))
    else:
        desired = 0
    return Budget(pdb.name, healthy, desired, expected)
