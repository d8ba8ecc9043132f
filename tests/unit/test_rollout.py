"""Rollouts and disruption budgets: the arithmetic of Kubernetes' controllers.

Vectors worked by hand from kubernetes/kubernetes pkg/controller/deployment (rolling.go:
reconcileNewReplicaSet, reconcileOldReplicaSets, cleanupUnhealthyReplicas; util
ResolveFenceposts), pkg/controller/statefulset (OrderedReady, RollingUpdate) and
pkg/controller/disruption (getExpectedScale, desiredHealthy), and the documented examples in
"Deployments" and "Specifying a Disruption Budget"."""

from __future__ import annotations

import pytest

from finchsim.platform.local.disruption import budget
from finchsim.platform.local.rollout import (
    Plan,
    PodView,
    plan_deployment,
    plan_statefulset,
    scaled,
    surge_and_unavailable,
)
from finchsim.platform.topology import Pdb


def pods(spec: str) -> list[PodView]:
    """'o o n.' -> old ready, old ready, new not ready; created in that order."""
    out = []
    for i, word in enumerate(spec.split()):
        out.append(
            PodView(f"p{i}", 2 if word[0] == "n" else 1, not word.endswith("."), True, float(i))
        )
    return out


@pytest.mark.parametrize(
    ("value", "total", "up", "expected"),
    [
        (1, 10, True, 1),
        ("25%", 3, True, 1),
        ("25%", 3, False, 0),
        ("25%", 4, False, 1),
        ("50%", 3, True, 2),
        ("10%", 10, False, 1),
        ("3", 10, True, 3),
    ],
)
def test_scaled_int_or_percent(value: int | str, total: int, up: bool, expected: int) -> None:
    assert scaled(value, total, up) == expected


def test_fenceposts_never_both_zero() -> None:
    # The documented default (25%/25%) on 3 replicas: surge rounds up to 1, unavailable down to 0.
    assert surge_and_unavailable("25%", "25%", 3) == (1, 0)
    assert surge_and_unavailable(0, 0, 3) == (0, 1)
    assert surge_and_unavailable("10%", "10%", 5) == (1, 0)


@pytest.mark.parametrize(
    ("spec", "desired", "expected"),
    [
        ("o o", 3, Plan(create=1)),  # steady state: the ReplicaSet adds the missing one
        ("o o o o", 3, Plan(delete=("p3",))),  # surplus: the newest goes
        ("o o. o", 2, Plan(delete=("p1",))),  # surplus: a not-ready pod goes before a ready one
    ],
)
def test_steady_state_replicaset(spec: str, desired: int, expected: Plan) -> None:
    assert plan_deployment(pods(spec.replace("o", "n")), desired, 2, 1, 0) == Plan(
        expected.create, tuple(expected.delete)
    )


def test_rolling_update_surge_1_unavailable_0_walks_one_pod_at_a_time() -> None:
    # Start: 3 old ready. maxSurge 1, maxUnavailable 0: one new pod, nothing deleted.
    assert plan_deployment(pods("o o o"), 3, 2, 1, 0) == Plan(create=1)
    # The new pod is not ready yet: nothing may go (3 must stay available).
    assert plan_deployment(pods("o o o n."), 3, 2, 1, 0) == Plan()
    # Ready: one old pod goes (the newest old one), and no extra new pod while 4 exist.
    assert plan_deployment(pods("o o o n"), 3, 2, 1, 0) == Plan(delete=("p2",))
    # 2 old + 1 new: surge room again for the second new pod.
    assert plan_deployment(pods("o o n"), 3, 2, 1, 0) == Plan(create=1)


def test_rolling_update_surge_0_unavailable_1_deletes_first() -> None:
    assert plan_deployment(pods("o o o"), 3, 2, 0, 1) == Plan(delete=("p2",))
    assert plan_deployment(pods("o o"), 3, 2, 0, 1) == Plan(create=1)
    # The new pod is not ready: availability is at the floor (2), so no further deletion.
    assert plan_deployment(pods("o o n."), 3, 2, 0, 1) == Plan()


def test_unhealthy_old_pods_are_cleaned_up_first() -> None:
    # 3 old, one not ready; maxSurge 1, maxUnavailable 0: maxScaledDown is 3 - 3 - 0 = 0,
    # so only the surge pod starts.
    assert plan_deployment(pods("o o. o"), 3, 2, 1, 0) == Plan(create=1)
    # With the new pod ready there is room for one deletion: the broken old pod, not a ready one.
    assert plan_deployment(pods("o o. o n"), 3, 2, 1, 0) == Plan(delete=("p1",))


def test_recreate_deletes_every_old_pod_before_creating() -> None:
    assert plan_deployment(pods("o o"), 1, 2, 1, 0, recreate=True) == Plan(delete=("p0", "p1"))
    assert plan_deployment([], 1, 2, 1, 0, recreate=True) == Plan(create=1)


def sts(spec: str) -> list[PodView]:
    return [
        PodView(f"db-{i}", 2 if w[0] == "n" else 1, not w.endswith("."), True, float(i))
        for i, w in enumerate(spec.split())
    ]


def test_statefulset_ordered_ready_and_rolling_update() -> None:
    assert plan_statefulset([], 2, 2, set()) == Plan(create=1, ordinal=0)
    # OrderedReady: db-1 waits for db-0 to be ready.
    assert plan_statefulset(sts("n."), 2, 2, {0}) == Plan()
    assert plan_statefulset(sts("n"), 2, 2, {0}) == Plan(create=1, ordinal=1)
    # Rolling update: the highest ordinal first, only while all are ready.
    assert plan_statefulset(sts("o o"), 2, 2, {0, 1}) == Plan(delete=("db-1",))
    assert plan_statefulset(sts("o n."), 2, 2, {0, 1}) == Plan()
    assert plan_statefulset(sts("o n"), 2, 2, {0, 1}) == Plan(delete=("db-0",))
    # A pod object that still exists (Terminating on a dead node) keeps its name taken.
    assert plan_statefulset([], 1, 2, {0}) == Plan()


def labelled(ready: list[bool], app: str = "web") -> list[tuple[dict[str, str], bool]]:
    return [({"app": app}, r) for r in ready]


@pytest.mark.parametrize(
    ("min_available", "max_unavailable", "ready", "expected", "allowed"),
    [
        (None, 1, [True, True, True], 3, 1),  # the seed's maxUnavailable: 1 on 3 replicas
        (None, 1, [True, True, False], 3, 0),  # one already down: no eviction
        (None, 1, [True, True], 3, 0),  # one evicted, its replacement not there yet
        (2, None, [True, True, True], 3, 1),
        ("50%", None, [True, True, True], 3, 1),  # 50% of 3 rounds up to 2
        (None, "50%", [True, True, True, True], 4, 2),
        (1, None, [True], 1, 0),  # a single replica with minAvailable 1 can never be evicted
    ],
)
def test_pdb_disruptions_allowed(
    min_available: int | str | None,
    max_unavailable: int | str | None,
    ready: list[bool],
    expected: int,
    allowed: int,
) -> None:
    pdb = Pdb("web", {"app": "web"}, min_available, max_unavailable)
    pods_ = labelled(ready) + labelled([True, True], app="other")
    assert budget(pdb, pods_, expected).allowed == allowed
