"""Running any platform in the foreground: `up` under a live view, hold or drive, always down.

The view is built from the `Platform` seam only (components, pods per node, HPAs, nodes, and
the ingress requests per second from its Prometheus), so it shows the same thing whatever runs
the topology. Ctrl-C or SIGTERM (`finchsim down`) tears
everything down; Ctrl-C exits 130."""

from __future__ import annotations

import contextlib
import json
import signal
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from types import FrameType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from finchsim.platform.base import Capability, Platform

REFRESH_SECONDS = 1.0


class IngressRates:
    """Requests per second through the ingress by status class, from Prometheus (ingress-nginx's
    `nginx_ingress_controller_requests`, the same on every platform that has one), asked at most
    every `EVERY_S`: the view refreshes faster than Prometheus scrapes."""

    EVERY_S = 5.0
    QUERY = "sum by (status) (rate(nginx_ingress_controller_requests[30s]))"

    def __init__(self) -> None:
        self.asked = -self.EVERY_S
        self.text = ""

    def line(self, platform: Platform) -> str:
        if Capability.PROMETHEUS not in platform.capabilities:
            return ""
        now = time.monotonic()
        if now - self.asked >= self.EVERY_S:
            self.asked = now
            with contextlib.suppress(Exception):  # not scraped yet, or Prometheus restarting
                self.text = self._ask(platform.prometheus_url())
        return self.text

    def _ask(self, prometheus: str) -> str:
        url = f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": self.QUERY})
        with urllib.request.urlopen(url, timeout=2) as resp:
            samples = json.load(resp)["data"]["result"]
        classes: dict[str, float] = {}
        for sample in samples:
            key = sample["metric"].get("status", "?")[:1] + "xx"
            classes[key] = classes.get(key, 0.0) + float(sample["value"][1])
        total = sum(classes.values())
        parts = ", ".join(f"{k} {v:.1f}" for k, v in sorted(classes.items()))
        return f"ingress: {total:.1f} req/s" + (f" ({parts})" if parts else "")


def view(
    platform: Platform, events: list[str], title: str, rates: IngressRates | None = None
) -> Group:
    """One frame: workloads with ready/desired and where their pods run, HPAs, nodes, and the
    requests per second through the ingress (with `rates`)."""
    table = Table(title=title, expand=False)
    for col in ("workload", "ready/desired", "pods (node)", "restarts", "waiting"):
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
        restarts = sum(cs.restarts for p in mine for cs in p.containers)
        # Why containers are not running: CrashLoopBackOff, ImagePullBackOff, OOMKilled, ...
        reasons = Counter(
            cs.reason for p in mine for cs in p.containers if cs.reason and not cs.ready
        )
        table.add_row(
            c.name,
            Text(f"{c.ready}/{c.desired}", style=style),
            ", ".join(f"{n}x {k}" for k, n in sorted(per_node.items())),
            str(restarts) if restarts else "",
            Text(", ".join(f"{n}x {r}" for r, n in sorted(reasons.items())), style="red"),
        )
    lines = [
        f"{h.name}: {h.current}→{h.desired} "
        + " ".join(f"{k} {h.utilization.get(k, 0):.0f}%/{v}%" for k, v in h.targets.items())
        for h in hpas
    ]
    ready_nodes = sum(1 for n in nodes if n.ready)
    lines.append(f"nodes: {ready_nodes}/{len(nodes)} Ready")
    if rates is not None and (traffic := rates.line(platform)):
        lines.append(traffic)
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


# What each stopping signal makes the process exit with: 128 + the signal, as a shell reports it.
EXIT_FOR_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


class Stop:
    """The signal that asked a run to stop (SIGINT, SIGTERM or SIGHUP), if one did."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self.tearing_down = False

    @property
    def exit_code(self) -> int:
        return EXIT_FOR_SIGNAL.get(signal.Signals(self.signal or signal.SIGINT), 130)

    def check(self) -> None:
        """Raise KeyboardInterrupt if a signal came. The handler raises it too, but Python
        drops an exception raised in a callback whose errors it ignores (logging's at-fork
        hook, run each time a process is forked), so loops call this as well."""
        if self.signal is not None and not self.tearing_down:
            raise KeyboardInterrupt


@contextlib.contextmanager
def interruptible() -> Iterator[Stop]:
    """Ctrl-C, SIGTERM and SIGHUP (the terminal closed) raise KeyboardInterrupt in the main
    thread once, recorded in the yielded Stop. A further signal, or any signal while the
    caller tears down (`stop.tearing_down`), is only noted: a second Ctrl-C must not cut the
    teardown short and leave processes behind. The previous handlers come back afterwards,
    unless a signal came."""
    stop = Stop()

    def on_signal(sig: int, _frame: FrameType | None) -> None:
        if stop.signal is not None or stop.tearing_down:
            stop.signal = stop.signal or sig
            return
        stop.signal = sig
        raise KeyboardInterrupt

    # Ctrl-C must tear down even when started with SIGINT ignored (a background job of a
    # non-interactive shell inherits that, and Python then installs no handler of its own).
    previous = {s: signal.signal(s, on_signal) for s in EXIT_FOR_SIGNAL}
    try:
        yield stop
    finally:
        # Once stopping, the process is on its way out: a late signal must not turn exit 130
        # into death by the signal (Python re-raises an uncaught Ctrl-C as SIGINT).
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_IGN if stop.signal is not None else handler)


def run_platform(
    platform: Platform,
    out: Console,
    err: Console,
    events: EventLog,
    *,
    hold: bool,
    then: Callable[[Platform, Callable[[], None]], int] | None = None,
    timeout: float = 300.0,
) -> int:
    """Up with a live view; then either hold until a signal or run `then(platform, tick)`
    (`tick()` refreshes the view and raises KeyboardInterrupt once a signal came); down."""
    title = f"Finch on the {platform.name} platform"
    rates = IngressRates()
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
                live.update(view(platform, events, title, rates))
                where = (
                    f"kubectl --kubeconfig {platform.kubeconfig()}"
                    if Capability.KUBECONFIG in platform.capabilities
                    else ""
                )
                out.print(f"ready in {time.monotonic() - started:.1f}s on {platform.name}. {where}")
                if then is not None:

                    def tick() -> None:
                        stop.check()
                        live.update(view(platform, events, title, rates))

                    return then(platform, tick)
                while hold:
                    platform.poll()
                    stop.check()
                    live.update(view(platform, events, title, rates))
                    time.sleep(REFRESH_SECONDS)
            return 0
        except KeyboardInterrupt:
            err.print("stopping…")
            return stop.exit_code
        finally:
            stop.tearing_down = True
            platform.down()
