"""The kubelet's /metrics volume stats: which of a pod's volumes are claims, the walk cached
for the aggregation period, a claim mounted twice reported once, an unreadable one left out."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from finchsim.platform.kubelet.volumes import VolumeStatsCache, pod_claims


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def used(text: bytes) -> dict[tuple[str, str], float]:
    return {
        (s.labels["namespace"], s.labels["persistentvolumeclaim"]): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
        if s.name == "kubelet_volume_stats_used_bytes"
    }


def test_claims_are_the_pvc_volumes_under_the_claims_directory(tmp_path: Path) -> None:
    volumes = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-postgres-0"}},
        {"name": "tmp", "emptyDir": {}},
        {"name": "config", "configMap": {"name": "finch-config"}},
    ]
    assert pod_claims("finch-production", volumes, tmp_path) == [
        ("finch-production", "data-postgres-0", tmp_path / "finch-production" / "data-postgres-0")
    ]


def test_stats_are_walked_once_per_period(tmp_path: Path) -> None:
    claim = tmp_path / "ns" / "data"
    claim.mkdir(parents=True)
    clock = Clock()
    cache = VolumeStatsCache(period=60.0, clock=clock)
    claims = [("ns", "data", claim), ("ns", "data", claim)]  # two pods mount it
    before = used(cache.exposition(claims))
    assert list(before) == [("ns", "data")]
    (claim / "table").write_bytes(b"x" * 1_000_000)
    clock.now += 59.0
    assert used(cache.exposition(claims)) == before  # within the period: the cached walk
    clock.now += 1.0
    after = used(cache.exposition(claims))
    assert after[("ns", "data")] >= before[("ns", "data")] + 1_000_000


def test_an_unreadable_claim_is_left_out(tmp_path: Path) -> None:
    cache = VolumeStatsCache(clock=Clock())
    (tmp_path / "ok").mkdir()
    claims = [("ns", "gone", tmp_path / "gone"), ("ns", "ok", tmp_path / "ok")]
    assert list(used(cache.exposition(claims))) == [("ns", "ok")]
