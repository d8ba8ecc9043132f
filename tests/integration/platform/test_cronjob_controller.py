"""The CronJob controller of the local platform: when the schedule fires, in the CronJob's time
zone, and what concurrencyPolicy does with a run still active. The controller is built on the
rendered production overlay; no process is started (pods are only created, never stepped)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from finchsim.platform.local.controller import Controller
from finchsim.platform.local.jobs import next_fire
from finchsim.platform.local.settings import load_settings
from finchsim.platform.manifests import render
from finchsim.platform.topology import build_topology
from finchsim.project import Project


@pytest.fixture
def controller(project: Project) -> Iterator[Controller]:
    topology = build_topology(render(project, "production"))
    settings = load_settings(project.cluster / "local" / "platform.yaml")
    with tempfile.TemporaryDirectory(prefix="finchsim-cron-") as run_dir:
        ctl = Controller(
            topology, settings, Path(run_dir), "cron-test", project.root, None, lambda _msg: None
        )
        yield ctl
        ctl.shutdown()


def test_backup_schedule_is_daily_at_two_utc(controller: Controller) -> None:
    cronjob = controller.topology.cronjobs["postgres-backup"]
    assert (cronjob.schedule, cronjob.time_zone) == ("0 2 * * *", "Etc/UTC")
    noon = datetime(2026, 3, 28, 12, 0, tzinfo=ZoneInfo("Etc/UTC")).timestamp()
    assert (
        next_fire(cronjob, noon)
        == datetime(2026, 3, 29, 2, 0, tzinfo=ZoneInfo("Etc/UTC")).timestamp()
    )
    # The timeZone field counts: 2 AM in Berlin is 01:00 UTC in winter. (On 29 March 2026 2 AM
    # does not exist there, clocks jump to 3 AM CEST, which is again 01:00 UTC.)
    berlin = replace(cronjob, time_zone="Europe/Berlin")
    assert (
        next_fire(berlin, noon - 86400 * 7)
        == datetime(2026, 3, 22, 1, 0, tzinfo=ZoneInfo("Etc/UTC")).timestamp()
    )
    assert (
        next_fire(berlin, noon)
        == datetime(2026, 3, 29, 1, 0, tzinfo=ZoneInfo("Etc/UTC")).timestamp()
    )


def test_schedule_fires_and_forbid_skips_while_a_run_is_active(controller: Controller) -> None:
    state = controller.crons["postgres-backup"]
    assert state.cronjob.concurrency_policy == "Forbid"
    assert state.next_run > time.time()  # nothing due at start
    state.next_run = time.time() - 1
    controller._jobs(time.monotonic())
    jobs = list(controller.jobs.values())
    assert [j.name.startswith("postgres-backup-scheduled-") for j in jobs] == [True]
    assert state.last_schedule is not None and state.next_run > time.time()
    state.next_run = time.time() - 1  # the next run is due while the first is still active
    controller._jobs(time.monotonic())
    assert list(controller.jobs.values()) == jobs
