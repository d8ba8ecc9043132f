"""kubelet_volume_stats_*: what a kubelet reports for a directory-backed PersistentVolumeClaim.

The kubelet's du-based volume metrics (`pkg/volume/metrics_du.go`) take capacity, available
bytes, inodes and free inodes from statfs of the filesystem holding the directory
(`pkg/volume/util/fs/fs.go` Info: blocks * bsize, bavail * bsize, files, ffree), and used
bytes and used inodes from a walk of the directory that stays on its device, counts hard
links once and adds `st_blocks * 512` (fs.go DiskUsage). The collector
(`pkg/kubelet/metrics/collectors/volume_stats.go`) labels each family `namespace`,
`persistentvolumeclaim` and reports a claim once even when several pods mount it.

The kubelet computes them every `--volume-stats-agg-period` (default 1 minute), not per
scrape; a walk of a large data directory is not free, so a caller should cache likewise."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import Metric

from finchsim.platform.exporters.families import Family, Samples

LABELS = ("namespace", "persistentvolumeclaim")
FAMILIES: tuple[Family, ...] = (
    Family("kubelet_volume_stats_capacity_bytes", "Capacity in bytes of the volume", LABELS),
    Family(
        "kubelet_volume_stats_available_bytes", "Number of available bytes in the volume", LABELS
    ),
    Family("kubelet_volume_stats_used_bytes", "Number of used bytes in the volume", LABELS),
    Family("kubelet_volume_stats_inodes", "Maximum number of inodes in the volume", LABELS),
    Family("kubelet_volume_stats_inodes_free", "Number of free inodes in the volume", LABELS),
    Family("kubelet_volume_stats_inodes_used", "Number of used inodes in the volume", LABELS),
)


@dataclass(frozen=True)
class VolumeStats:
    capacity_bytes: int
    available_bytes: int
    used_bytes: int
    inodes: int
    inodes_free: int
    inodes_used: int


def _disk_usage(path: Path) -> tuple[int, int]:
    """(bytes, inodes) under `path` as fs.DiskUsage counts them."""
    top = os.stat(path)
    seen: set[int] = set()
    used = inodes = 0
    pending = [str(path)]
    while pending:
        current = pending.pop()
        try:
            st = os.lstat(current)
        except FileNotFoundError:  # deleted while walking: ignored, as upstream does
            continue
        if st.st_dev != top.st_dev:
            continue
        if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
            if st.st_ino in seen:
                continue
            seen.add(st.st_ino)
        used += st.st_blocks * 512
        inodes += 1
        if stat.S_ISDIR(st.st_mode):
            try:
                pending.extend(entry.path for entry in os.scandir(current))
            except FileNotFoundError:
                continue
    return used, inodes


def directory_volume_stats(path: Path) -> VolumeStats:
    """The six kubelet_volume_stats_* values of a directory-backed volume (see the module
    docstring). Raises OSError when `path` cannot be read."""
    fs = os.statvfs(path)
    used, inodes_used = _disk_usage(path)
    return VolumeStats(
        capacity_bytes=fs.f_blocks * fs.f_bsize,
        available_bytes=fs.f_bavail * fs.f_bsize,
        used_bytes=used,
        inodes=fs.f_files,
        inodes_free=fs.f_ffree,
        inodes_used=inodes_used,
    )


def volume_stats_families(claims: Iterable[tuple[str, str, VolumeStats]]) -> list[Metric]:
    """The kubelet_volume_stats_* families of (namespace, claim, stats); a claim given more
    than once (several pods mounting it) is reported once, its first stats."""
    out = Samples(FAMILIES)
    seen: set[tuple[str, str]] = set()
    for namespace, claim, s in claims:
        if (namespace, claim) in seen:
            continue
        seen.add((namespace, claim))
        key = (namespace, claim)
        for family, value in zip(
            FAMILIES,
            (
                s.capacity_bytes,
                s.available_bytes,
                s.used_bytes,
                s.inodes,
                s.inodes_free,
                s.inodes_used,
            ),
            strict=True,
        ):
            out.add(family.name, key, value)
    return out.metrics()
