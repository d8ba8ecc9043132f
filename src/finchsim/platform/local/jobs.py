"""Jobs and the CronJob controller: a job's pods (restartPolicy Never, backoffLimit retries,
activeDeadlineSeconds) and the schedule that starts them (croniter, in the CronJob's timeZone,
with its concurrencyPolicy)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter

from finchsim.platform.topology import CronJob


@dataclass
class JobRun:
    """One Job created from a CronJob (by its schedule or by `run_job`)."""

    cronjob: CronJob
    name: str
    started: float  # monotonic
    pods: list[str] = field(default_factory=list)  # every attempt, the current one last
    failures: int = 0
    finished: float | None = None  # monotonic
    succeeded: bool = False
    reason: str = ""
    output: str = ""

    @property
    def active(self) -> bool:
        return self.finished is None


@dataclass
class CronState:
    """A CronJob's status, as kube-state-metrics reports it (unix times)."""

    cronjob: CronJob
    created: float = field(default_factory=time.time)
    next_run: float = 0.0
    last_schedule: float | None = None
    last_success: float | None = None

    def __post_init__(self) -> None:
        self.next_run = next_fire(self.cronjob, self.created)


def next_fire(cronjob: CronJob, after: float) -> float:
    """The next scheduled time strictly after `after` (unix time)."""
    start = datetime.fromtimestamp(after, ZoneInfo(cronjob.time_zone))
    return float(croniter(cronjob.schedule, start).get_next(float))
