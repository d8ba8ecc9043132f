"""The local platform's Kubernetes behaviour over time, against real processes: the backup Job,
rollouts, the HPA scaling out and in, drains that honour PodDisruptionBudgets, node failure.

The staging overlay (one replica each, so the machine's two cores go to what is measured), with
the controllers' timings shortened by the test's own settings object (not by code changes):
15 s HPA sync -> 3 s, 300 s scale-down stabilisation -> 20 s, 40 s + 300 s node eviction ->
3 s + 5 s."""

from __future__ import annotations

import gzip
import json
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from finchsim.errors import PlatformError
from finchsim.platform.local.autoscaler import DECISIONS_FILE
from finchsim.platform.local.platform import LocalPlatform
from finchsim.platform.local.settings import LocalPlatformSettings, Timings, load_settings
from finchsim.platform.local.snapshot import WorkloadSnapshot
from finchsim.project import Project
from tests.integration.platform.support import wait_for

pytestmark = pytest.mark.integration

NS = "finch-staging"  # the overlay these tests run
SHORT = Timings(
    hpaSyncPeriod=3,
    hpaDownscaleStabilization=20,
    hpaCpuInitializationPeriod=10,
    hpaInitialReadinessDelay=5,
    nodeMonitorGracePeriod=3,
    podEvictionTimeout=5,
    metricsResolution=6,
    scrapeInterval="5s",
)


@pytest.fixture(scope="module")
def settings(project: Project) -> LocalPlatformSettings:
    base = load_settings(project.cluster / "local" / "platform.yaml")
    return base.model_copy(update={"timings": SHORT})


@pytest.fixture(scope="module")
def platform(project: Project, settings: LocalPlatformSettings) -> Iterator[LocalPlatform]:
    plat = LocalPlatform(project, "staging", settings=settings)
    plat.up(timeout=180)
    try:
        yield plat
    finally:
        plat.down()


def workload(platform: LocalPlatform, name: str) -> WorkloadSnapshot:
    return next(w for w in platform.snapshot_value.workloads if w.name == name)


def pods_of(platform: LocalPlatform, owner: str) -> list[tuple[str, str | None, bool]]:
    return [(p.name, p.node, p.ready) for p in platform.snapshot_value.pods if p.owner == owner]


def test_backup_job_dumps_the_database(platform: LocalPlatform) -> None:
    result = platform.run_job(NS, "postgres-backup", timeout=120)
    assert result.succeeded, result.output
    assert result.reason == "Complete"
    dumps = sorted((platform.run_dir / "volumes" / "finch-backup").glob("backup-*.sql.gz"))
    assert len(dumps) == 1, result.output
    assert dumps[0].name in result.output  # the job's `ls -l /backup`, on the mounted volume
    sql = gzip.decompress(dumps[0].read_bytes()).decode()
    assert "CREATE TABLE public.finch_transaction " in sql  # the app label is `finch`
    platform.step()
    cron = next(c for c in platform.snapshot_value.cronjobs if c.name == "postgres-backup")
    assert cron.last_success is not None and cron.last_success > time.time() - 120


def test_rollout_replaces_every_pod_within_surge_and_unavailability(
    platform: LocalPlatform,
) -> None:
    """finch-frontend, maxSurge 1 / maxUnavailable 0: never fewer than 1 ready, never more
    than 2 pods, and at the end only new pods."""
    before = {name for name, _, _ in pods_of(platform, "finch-frontend")}
    seen: list[tuple[int, int]] = []

    def watch() -> None:
        pods = pods_of(platform, "finch-frontend")
        seen.append((len(pods), sum(1 for *_, ready in pods if ready)))

    platform.rollout(NS, "finch-frontend")
    wait_for(
        platform,
        lambda: (
            workload(platform, "finch-frontend").updated == 1
            and workload(platform, "finch-frontend").ready == 1
            and len(pods_of(platform, "finch-frontend")) == 1
        ),
        90,
        "the frontend rolled out",
        each=watch,
    )
    after = {name for name, _, _ in pods_of(platform, "finch-frontend")}
    assert not before & after
    assert max(total for total, _ in seen) == 2, seen  # the surge pod existed
    assert min(ready for _, ready in seen) >= 1, seen  # and nobody was left without one


def test_hpa_scales_out_under_cpu_load_and_in_after_stabilisation(platform: LocalPlatform) -> None:
    assert platform.controller is not None
    ctl = platform.controller
    stop = threading.Event()

    def burn() -> None:  # CPU-heavy requests straight to the backend pods (no rate limit)
        i = 0
        while not stop.is_set():
            targets = ctl.endpoints("finch-backend")
            if targets:
                url = f"http://{targets[i % len(targets)]}/api/compute"
                try:
                    urllib.request.urlopen(url, timeout=5).read()
                except OSError:
                    time.sleep(0.1)
            i += 1

    threads = [threading.Thread(target=burn, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(
            platform,
            lambda: workload(platform, "finch-backend").desired >= 2,
            90,
            "the HPA scaling finch-backend out",
        )
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    wait_for(
        platform,
        lambda: workload(platform, "finch-backend").desired == 1,
        120,
        "the HPA scaling finch-backend back in",
    )
    # What the stabilisation window guarantees (horizontal.go, stabilizeRecommendation): a
    # scale-in to N only once every recommendation recorded in the last window is <= N. So it
    # is measured from the last recorded recommendation above N, not from the scale-out or
    # from when this test stopped the load (wall-clock luck); the decision log holds them all.
    window = SHORT.hpaDownscaleStabilization
    lines = (platform.run_dir / DECISIONS_FILE).read_text().splitlines()
    log = [d for d in map(json.loads, lines) if d["hpa"] == "finch-backend-hpa"]
    evidence = "decisions:\n" + "\n".join(
        f"{d['time']:.1f} {d['current']}->{d['desired']} proposal {d['decision']['proposal']}"
        f" stabilized {d['decision']['stabilized']}: {d['reason']}"
        for d in log
    )
    out = next(i for i, d in enumerate(log) if d["desired"] > d["current"])
    scale_ins = [i for i, d in enumerate(log) if i > out and d["desired"] < d["current"]]
    assert scale_ins and log[scale_ins[-1]]["desired"] == 1, evidence
    for i in scale_ins:
        # Only decisions that reached the stabilisation step recorded their proposal.
        higher = [
            d["time"]
            for d in log[:i]
            if d["decision"]["stabilized"] is not None
            and d["decision"]["proposal"] > log[i]["desired"]
        ]
        assert log[i]["time"] - max(higher) > window, (
            f"scale-in at {log[i]['time']:.1f}\n{evidence}"
        )
    # And the window did its work: syncs after the scale-out proposed fewer replicas and were
    # held at the recent higher recommendation.
    held = [
        d
        for d in log[out + 1 : scale_ins[0]]
        if d["decision"]["stabilized"] is not None
        and d["decision"]["proposal"] < d["decision"]["stabilized"] == d["current"] == d["desired"]
    ]
    assert held, evidence
    wait_for(
        platform,
        lambda: len(pods_of(platform, "finch-backend")) == 1,
        60,
        "the surplus backend pods gone",
    )


def test_drain_honours_the_pod_disruption_budget(platform: LocalPlatform) -> None:
    """finch-worker (PDB maxUnavailable 1) at 2 replicas: with one already down, draining the
    other's node is refused; once it is back, the drain moves the pod off the node."""
    platform.scale(NS, "finch-worker", 2)
    wait_for(platform, lambda: workload(platform, "finch-worker").ready == 2, 90, "2 ready workers")
    (first, _, _), (_, node, _) = pods_of(platform, "finch-worker")[:2]
    assert node is not None
    platform.delete_pod(NS, first, grace_period=0)
    platform.step()
    with pytest.raises(PlatformError, match="PodDisruptionBudget finch-worker allows 0"):
        platform.drain_node(node, timeout=1)
    platform.drain_node(node, timeout=120)
    assert not [
        p
        for p in platform.snapshot_value.pods
        if p.node == node and p.phase not in ("Succeeded", "Failed")
    ]
    assert not next(n for n in platform.nodes() if n.name == node).schedulable
    wait_for(
        platform,
        lambda: workload(platform, "finch-worker").ready == 2,
        90,
        "the drained worker running elsewhere",
    )
    assert all(n != node for _, n, _ in pods_of(platform, "finch-worker"))
    platform.uncordon_node(node)
    platform.scale(NS, "finch-worker", 1)


def test_node_failure_moves_its_pods(platform: LocalPlatform) -> None:
    """The node running PostgreSQL stops. It turns NotReady after the grace period; after the
    toleration its pods are evicted: the Deployments' are recreated on other nodes, but the
    StatefulSet's pod stays Terminating (no kubelet confirms it ended, and its name is taken)
    until the node returns. Then PostgreSQL comes back and everything is ready again."""
    victim = next(p.node for p in platform.snapshot_value.pods if p.owner == "finch-postgres")
    assert victim is not None
    moved = {
        p.name: p.owner
        for p in platform.snapshot_value.pods
        if p.node == victim and p.owner_kind == "ReplicaSet"
    }
    assert moved, f"no Deployment pod shares {victim} with PostgreSQL"
    failed_at = time.monotonic()
    platform.fail_node(victim)
    wait_for(
        platform,
        lambda: not next(n for n in platform.nodes() if n.name == victim).ready,
        30,
        "the node NotReady",
    )
    assert time.monotonic() - failed_at >= SHORT.nodeMonitorGracePeriod - 0.5

    def replaced() -> bool:
        live = [p for p in platform.snapshot_value.pods if p.name not in moved]
        # Scheduled elsewhere; a backend's init container (migrate) waits for PostgreSQL.
        return all(
            any(p.owner == owner and p.node not in (None, victim) for p in live)
            for owner in moved.values()
        )

    wait_for(platform, replaced, 60, "replacements scheduled on other nodes")
    assert time.monotonic() - failed_at >= (
        SHORT.nodeMonitorGracePeriod + SHORT.podEvictionTimeout - 0.5
    )
    stuck = {p.name: p.reason for p in platform.snapshot_value.pods if p.node == victim}
    assert set(moved) < set(stuck) and all("Terminating" in r for r in stuck.values()), stuck
    postgres = [p for p in platform.snapshot_value.pods if p.owner == "finch-postgres"]
    assert [(p.node, p.phase) for p in postgres] == [(victim, "Unknown")]
    platform.recover_node(victim)
    wait_for(platform, platform.all_ready, 150, "PostgreSQL back and every workload ready")
    assert not set(moved) & {p.name for p in platform.snapshot_value.pods}
