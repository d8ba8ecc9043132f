"""Running any platform in the foreground: `up` under a live view, hold or drive, always down.

The view is built from the `Platform` seam only (components, pods per node, HPAs, nodes), so it
shows the same thing whatever runs the topology. Ctrl-C or SIGTERM (`finchsim down`) tears
everything down; Ctrl-C exits 130."""

from __future__ import annotations

import contextlib
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from types import FrameType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from finchsim.platform.base import Capability, Platform

REFRESH_SECONDS = 1.0


def view(platform: Platform, events: list[str], title: str) -> Group:
    """One frame: workloads with ready/desired and where their pods run, HPAs, nodes."""
    table = Table(title=title, expand=False)
    for col in ("workload", "ready/desired", "pods (node)"):
        table.add_column(col)
    try:
        components, pods, hpas, nodes = (
            platform.components(),
            platform.pods(),
            platform.hpas(),
            platform.nodes(),
        )
    except Exception as exc:  # the view must never take the run down: show why it is empty
        return Group(table, Text(f"(not reachable yet: {exc})", style="dim"))
    for c in sorted(components, key=lambda c: c.name):
        mine = [p for p in pods if p.owner == c.name and p.namespace == c.namespace]
        per_node = Counter(p.node or "Pending" for p in mine)
        style = "green" if c.ready >= c.desired else "yellow"
        table.add_row(
            c.name,
            Text(f"{c.ready}/{c.desired}", style=style),
            ", ".join(f"{n}x {k}" for k, n in sorted(per_node.items())),
        )
    lines = [
        f"{h.name}: {h.current}→{h.desired} "
        + " ".join(f"{k} {h.utilization.get(k, 0):.0f}%/{v}%" for k, v in h.targets.items())
        for h in hpas
    ]
    ready_nodes = sum(1 for n in nodes if n.ready)
    lines.append(f"nodes: {ready_nodes}/{len(nodes)} Ready")
    tail = Text("\n".join(events[-6:]), style="dim")
    return Group(table, Text("  ".join(lines)), tail)


class EventLog(list[str]):
    """What the platform says while it runs (its `log`). Until the first frame, a terminal shows
    the latest lines under "starting…"; a pipe or file gets each line as it comes, since rich
    renders a Live there only once, at the end."""

    def __init__(self) -> None:
        super().__init__()
        self.echo: Callable[[str], None] | None = None

    def append(self, line: str) -> None:
        super().append(line)
        if self.echo is not None:
            self.echo(line)

    def __rich__(self) -> Text:
        return Text("\n".join(["starting…", *self[-6:]]))


@contextlib.contextmanager
def live_view(console: Console, view: RenderableType, transient: bool) -> Iterator[Live]:
    """rich's Live, with its last line ended: written to a file or a pipe (not a terminal), its
    final render stops without a newline, so `stopping…` or `error: …` would run on from it."""
    try:
        with Live(view, console=console, refresh_per_second=2, transient=transient) as live:
            yield live
    finally:
        if not transient and not console.is_terminal:
            console.line()


class Stop:
    """The signal that asked a run to stop (SIGINT or SIGTERM), if one did."""

    def __init__(self) -> None:
        self.signal: int | None = None

    @property
    def term(self) -> bool:
        """SIGTERM: `finchsim down` asking, a requested stop rather than a failure."""
        return self.signal == signal.SIGTERM

    def check(self) -> None:
        """Raise KeyboardInterrupt if a signal came. The handler raises it too, but Python
        drops an exception raised in a callback whose errors it ignores (logging's at-fork
        hook, run each time a process is forked), so loops call this as well."""
        if self.signal is not None:
            raise KeyboardInterrupt


@contextlib.contextmanager
def interruptible() -> Iterator[Stop]:
    """SIGTERM and Ctrl-C both raise KeyboardInterrupt in the main thread and are recorded in
    the yielded Stop. The previous handlers come back afterwards."""
    stop = Stop()

    def on_signal(sig: int, _frame: FrameType | None) -> None:
        stop.signal = sig
        raise KeyboardInterrupt

    # Ctrl-C must tear down even when started with SIGINT ignored (a background job of a
    # non-interactive shell inherits that, and Python then installs no handler of its own).
    previous = signal.signal(signal.SIGTERM, on_signal)
    previous_int = signal.signal(signal.SIGINT, on_signal)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def run_platform(
    platform: Platform,
    out: Console,
    err: Console,
    events: EventLog,
    *,
    hold: bool,
    then: Callable[[Platform], int] | None = None,
    timeout: float = 300.0,
) -> int:
    """Up with a live view; then either hold until a signal or run `then(platform)`; down."""
    title = f"Finch on the {platform.name} platform"
    started = time.monotonic()
    with interruptible() as stop:
        try:
            first: RenderableType = events
            if not err.is_terminal:
                err.print("starting…")
                events.echo, first = err.print, Group()
            with live_view(err, first, transient=not hold) as live:
                platform.up(timeout)
                events.echo = None
                stop.check()
                live.update(view(platform, events, title))
                where = (
                    f"kubectl --kubeconfig {platform.kubeconfig()}"
                    if Capability.KUBECONFIG in platform.capabilities
                    else ""
                )
                out.print(f"ready in {time.monotonic() - started:.1f}s on {platform.name}. {where}")
                if then is not None:
                    return then(platform)
                while hold:
                    platform.poll()
                    stop.check()
                    live.update(view(platform, events, title))
                    time.sleep(REFRESH_SECONDS)
            return 0
        except KeyboardInterrupt:
            err.print("stopping…")
            return 0 if stop.term else 130
        finally:
            platform.down()
