"""The live view of a local topology: components, replicas, readiness, requests per second.

`run_up` is `finchsim up`: it brings the topology up under a rich Live table, then (with `hold`)
keeps reconciling until Ctrl-C or SIGTERM from `finchsim down`, and always tears down."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from finchsim.platform.local.platform import LocalPlatform
from finchsim.project import Project
from finchsim.running import interruptible, live_view


def render_view(platform: LocalPlatform, events: list[str]) -> Group:
    snap = platform.snapshot_value
    table = Table(title=f"Finch on the local platform ({platform.overlay})", expand=False)
    for col in ("workload", "ready/desired", "pods (node)", "cpu m", "memory MiB"):
        table.add_column(col)
    for w in snap.workloads:
        pods = [p for p in snap.pods if p.owner == w.name]
        cpu_m = sum(h.utilization.get("cpu", 0) for h in snap.hpas if h.target == w.name)
        mem = sum(c.memory_working_set for p in pods for c in p.containers) / 2**20
        nodes = ", ".join(f"{'✓' if p.ready else '…'}{(p.node or 'Pending')[-1]}" for p in pods)
        style = "green" if w.ready >= w.desired else "yellow"
        table.add_row(
            w.name,
            Text(f"{w.ready}/{w.desired}", style=style),
            nodes,
            f"{cpu_m:.0f}%" if cpu_m else "",
            f"{mem:.0f}",
        )
    hpas = "  ".join(
        f"{h.name}: {h.current}→{h.desired} "
        + " ".join(f"{k} {v:.0f}%/{h.targets.get(k)}%" for k, v in h.utilization.items())
        for h in snap.hpas
    )
    rates = snap.ingress_rates
    traffic = (
        f"ingress: {rates.requests:.1f} req/s, errors (5xx) {rates.errors:.1f}/s, "
        f"rate-limited {rates.limited:.1f}/s"
    )
    tail = Text("\n".join(events[-6:]), style="dim")
    return Group(table, Text(hpas), Text(traffic), tail)


def run_up(
    project: Project,
    overlay: str,
    out: Console,
    err: Console,
    *,
    hold: bool,
    then: Callable[[LocalPlatform], int] | None = None,
) -> int:
    """Up with a live view; then either hold until a signal or run `then(platform)`; down."""
    events: list[str] = []
    platform = LocalPlatform(project, overlay, log=lambda msg: events.append(msg))
    started = time.monotonic()
    with interruptible() as stop:
        try:
            with live_view(err, render_view(platform, events), transient=not hold) as live:

                def tick() -> None:
                    stop.check()
                    live.update(render_view(platform, events))

                platform.up(on_tick=tick)
                tick()
                out.print(
                    f"ready in {time.monotonic() - started:.1f}s — ingress "
                    f"{platform.ingress_url('')} (Host: api.finch.example.com), Prometheus "
                    f"{platform.prometheus_url()}"
                )
                if then is not None:
                    return then(platform)
                while hold:
                    platform.step()
                    tick()
                    time.sleep(0.5)
            return 0
        except KeyboardInterrupt:
            err.print("stopping…")
            return stop.exit_code
        finally:
            stop.tearing_down = True
            platform.down()
