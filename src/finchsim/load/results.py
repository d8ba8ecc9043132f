"""What one Locust run measured, read back from the files it left in the run directory.

Totals, latencies and the per-second counts come from Locust's `--json-file` (exact at exit,
unlike its CSVs, which are rewritten once a second); user counts and the rolling p95 over time
from `--csv-full-history`; status codes, rate limiting and the stop reason from the summary the
locustfile writes on exit (Locust's own files do not keep status codes)."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Latency:
    """Response-time percentiles in milliseconds (Locust's rounded buckets)."""

    p50: float
    p95: float
    p99: float
    max: float


@dataclass(frozen=True)
class EndpointStats:
    """One request name (`name=` in the locustfile) and method."""

    method: str
    name: str
    requests: int
    failures: int
    latency: Latency


@dataclass(frozen=True)
class HistoryPoint:
    """One second of the run: requests and failures started in it (exact), the user count
    and the rolling p95 of the last ~10 s as Locust's CSV had them at that second."""

    time: int
    users: int
    rps: int
    failures_per_s: int
    p95_ms: float


@dataclass(frozen=True)
class LoadResult:
    """Everything `LocustRun.collect()` returns; `to_dict()` is what goes in the run journal."""

    profile: str
    exit_code: int
    stop_reason: str
    requests: int
    failures: int
    rate_limited: dict[int, int]
    status_counts: dict[int, int]
    users_started: int
    client_ips: int
    latency: Latency
    endpoints: tuple[EndpointStats, ...]
    history: tuple[HistoryPoint, ...]
    # Exceptions raised inside the locustfile's tasks ("N x message"): a bug, not server load.
    exceptions: tuple[str, ...] = ()

    @property
    def rate_limited_total(self) -> int:
        return sum(self.rate_limited.values())

    @property
    def duration_s(self) -> int:
        return self.history[-1].time - self.history[0].time + 1 if self.history else 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(response_times: dict[int, int], total: int, share: float) -> float:
    """Locust's own percentile over its `{rounded ms: count}` histogram."""
    wanted = int(total * share)
    seen = 0
    for value in sorted(response_times, reverse=True):
        seen += response_times[value]
        if total - seen <= wanted:
            return float(value)
    return 0.0


def _latency(response_times: dict[int, int], total: int) -> Latency:
    return Latency(
        p50=percentile(response_times, total, 0.50),
        p95=percentile(response_times, total, 0.95),
        p99=percentile(response_times, total, 0.99),
        max=float(max(response_times, default=0)),
    )


def _ints(table: dict[str, int]) -> dict[int, int]:
    # JSON turned Locust's int keys into strings.
    return {int(float(k)): int(v) for k, v in table.items()}


def read_result(prefix: Path, summary_file: Path, exit_code: int) -> LoadResult:
    """Build a LoadResult from `<prefix>.json`, `<prefix>_stats_history.csv` and the summary."""
    entries: list[dict[str, Any]] = json.loads(prefix.with_suffix(".json").read_text())
    summary: dict[str, Any] = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    merged: defaultdict[int, int] = defaultdict(int)
    per_s: defaultdict[int, int] = defaultdict(int)
    fails_per_s: defaultdict[int, int] = defaultdict(int)
    endpoints = []
    for entry in sorted(entries, key=lambda e: (e["name"], e["method"] or "")):
        times = _ints(entry["response_times"])
        for key, count in times.items():
            merged[key] += count
        for second, count in _ints(entry["num_reqs_per_sec"]).items():
            per_s[second] += count
        for second, count in _ints(entry["num_fail_per_sec"]).items():
            fails_per_s[second] += count
        endpoints.append(
            EndpointStats(
                method=entry["method"] or "",
                name=entry["name"],
                requests=entry["num_requests"],
                failures=entry["num_failures"],
                latency=_latency(times, entry["num_requests"]),
            )
        )
    requests = sum(e.requests for e in endpoints)
    return LoadResult(
        profile=str(summary.get("profile", "")),
        exit_code=exit_code,
        stop_reason=str(summary.get("stopReason", "unknown (no summary written)")),
        requests=requests,
        failures=sum(e.failures for e in endpoints),
        rate_limited=_ints(summary.get("rateLimited", {})),
        status_counts=_ints(summary.get("statusCounts", {})),
        users_started=int(summary.get("usersStarted", 0)),
        client_ips=len(summary.get("clientIps", [])),
        latency=_latency(dict(merged), requests),
        endpoints=tuple(endpoints),
        history=_history(Path(f"{prefix}_stats_history.csv"), per_s, fails_per_s),
        exceptions=tuple(f"{e['count']} x {e['message']}" for e in summary.get("exceptions", [])),
    )


def _history(
    path: Path, per_s: dict[int, int], fails_per_s: dict[int, int]
) -> tuple[HistoryPoint, ...]:
    rows: dict[int, tuple[int, float]] = {}
    if path.is_file():
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if row["Name"] == "Aggregated":
                    p95 = row["95%"]
                    rows[int(row["Timestamp"])] = (
                        int(row["User Count"]),
                        float(p95) if p95 not in ("", "N/A") else 0.0,
                    )
    seconds = sorted(set(per_s) | set(rows))
    if not seconds:
        return ()
    points = []
    users, p95 = 0, 0.0
    for second in range(seconds[0], seconds[-1] + 1):
        users, p95 = rows.get(second, (users, p95))
        points.append(
            HistoryPoint(
                time=second,
                users=users,
                rps=per_s.get(second, 0),
                failures_per_s=fails_per_s.get(second, 0),
                p95_ms=p95,
            )
        )
    return tuple(points)
