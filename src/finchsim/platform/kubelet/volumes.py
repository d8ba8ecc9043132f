"""The kubelet's `/metrics`: the `kubelet_volume_stats_*` families (exporters.volume_stats) of
the PersistentVolumeClaims mounted by the pods of one node.

A claim's volume is its directory under the kubelet's `volumes/<namespace>/<claim>`
(`spec.volume_dirs`). Like the kubelet's fsResourceAnalyzer, the stats are computed at most
once per `--volume-stats-agg-period` per volume and a scrape hands out the last values: the
walk of a database's directory is not free. A volume that cannot be read is left out, as the
kubelet leaves out a volume whose metrics fail."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from finchsim.platform.exporters.kube_state import render
from finchsim.platform.exporters.volume_stats import (
    VolumeStats,
    directory_volume_stats,
    volume_stats_families,
)

AGG_PERIOD = 60.0  # the kubelet's --volume-stats-agg-period default (1m)
Claim = tuple[str, str, Path]  # namespace, claim name, its directory


def pod_claims(
    namespace: str, volumes: Iterable[dict[str, object]], claims_dir: Path
) -> list[Claim]:
    """The claims among a pod's volumes (its spec's `volumes`), with their directories."""
    out = []
    for volume in volumes:
        source = volume.get("persistentVolumeClaim")
        if isinstance(source, dict) and source.get("claimName"):
            claim = str(source["claimName"])
            out.append((namespace, claim, claims_dir / namespace / claim))
    return out


class VolumeStatsCache:
    """Stats per volume directory, recomputed when older than `period` seconds. One cache
    serves every node: a ReadWriteMany claim mounted on several is walked once."""

    def __init__(
        self, period: float = AGG_PERIOD, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.period = period
        self.clock = clock
        self._stats: dict[Path, tuple[float, VolumeStats]] = {}
        self._lock = threading.Lock()  # one scrape per node may run at once

    def stats(self, path: Path) -> VolumeStats | None:
        with self._lock:
            now = self.clock()
            cached = self._stats.get(path)
            if cached is not None and now - cached[0] < self.period:
                return cached[1]
            # A volume nobody asked for in a whole period is mounted by no pod any more.
            for old in [p for p, (at, _s) in self._stats.items() if now - at >= 2 * self.period]:
                del self._stats[old]
            try:
                value = directory_volume_stats(path)
            except OSError:
                self._stats.pop(path, None)
                return None
            self._stats[path] = (now, value)
            return value

    def exposition(self, claims: Iterable[Claim]) -> bytes:
        """The Prometheus text of the claims' families (a claim listed twice, once)."""
        rows = []
        for namespace, claim, path in claims:
            stats = self.stats(path)
            if stats is not None:
                rows.append((namespace, claim, stats))
        return render(volume_stats_families(rows))
