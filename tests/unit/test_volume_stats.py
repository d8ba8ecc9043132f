"""kubelet_volume_stats_* of a directory: used bytes as `du` counts them (allocated blocks,
hard links once), capacity/available/inodes from statfs as `df` reports them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from finchsim.platform.exporters.volume_stats import (
    FAMILIES,
    directory_volume_stats,
    volume_stats_families,
)


def _tree(root: Path) -> None:
    (root / "base" / "16384").mkdir(parents=True)
    (root / "base" / "16384" / "1259").write_bytes(os.urandom(300_000))
    (root / "pg_wal").mkdir()
    (root / "pg_wal" / "000000010000000000000001").write_bytes(b"\0" * 70_000)
    (root / "small").write_text("x")
    os.link(root / "small", root / "small-link")
    (root / "dangling").symlink_to(root / "nowhere")


def test_used_bytes_and_inodes_match_du(tmp_path: Path) -> None:
    volume = tmp_path / "data"
    volume.mkdir()
    _tree(volume)
    stats = directory_volume_stats(volume)
    du_bytes = int(
        subprocess.run(
            ["du", "-s", "-B1", str(volume)], capture_output=True, text=True, check=True
        ).stdout.split()[0]
    )
    du_inodes = int(
        subprocess.run(
            ["du", "-s", "--inodes", str(volume)], capture_output=True, text=True, check=True
        ).stdout.split()[0]
    )
    print(
        f"used {stats.used_bytes} B / du {du_bytes} B; inodes {stats.inodes_used} / du {du_inodes}"
    )
    assert stats.used_bytes == du_bytes
    assert stats.inodes_used == du_inodes


def test_capacity_and_available_match_df(tmp_path: Path) -> None:
    stats = directory_volume_stats(tmp_path)
    fields = (
        subprocess.run(
            ["df", "-B1", "--output=size,avail,itotal,iavail", str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.splitlines()[1]
        .split()
    )
    size, avail, itotal, iavail = (int(f) for f in fields)
    print(f"stats {stats}; df size={size} avail={avail} inodes={itotal} free={iavail}")
    assert stats.capacity_bytes == size
    # Other processes write to this filesystem between the two calls: allow a little drift.
    assert abs(stats.available_bytes - avail) < 64 * 2**20
    assert stats.inodes == itotal
    assert abs(stats.inodes_free - iavail) < 10_000


def test_families_carry_the_kubelet_labels_once_per_claim(tmp_path: Path) -> None:
    stats = directory_volume_stats(tmp_path)
    claims = [("finch-production", "data-postgres-0", stats)] * 2
    metrics = volume_stats_families(claims)
    assert [m.name for m in metrics] == [f.name for f in FAMILIES]
    for metric in metrics:
        assert [s.labels for s in metric.samples] == [
            {"namespace": "finch-production", "persistentvolumeclaim": "data-postgres-0"}
        ]
    used = next(m for m in metrics if m.name == "kubelet_volume_stats_used_bytes")
    assert used.samples[0].value == stats.used_bytes
