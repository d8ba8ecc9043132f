"""Why pods are not ready, in the words `kubectl describe pod` shows, for the message `up`
gives when it stops waiting.

One line per workload (its first unready pod, with how many more are unready), so a
Deployment of twenty crashing replicas does not hide the one Pending pod of another. The reason
is the first that applies, as a user would look for it:
- not scheduled: the scheduler's message (`0/3 nodes are available: 3 Insufficient cpu.`);
- a container Waiting: its reason, and either its last exit (CrashLoopBackOff: the exit code
  and the container's last lines say more than the back-off message) or the waiting message
  (ImagePullBackOff, CreateContainerConfigError name what is missing);
- a container running but not ready: the pod's last Unhealthy Event (the failing probe);
- else the Ready condition's message, else the phase."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes.client import V1ContainerStatus, V1Pod

from finchsim.platform.kubernetes.states import event_record, owner_of

# What a container waits in on its way to running: no reason in itself.
STARTING = ("ContainerCreating", "PodInitializing")
# (pod, container) -> the last lines the container printed ("" where logs are not served).
Tail = Callable[[V1Pod, str], str]


def _last_exit(status: V1ContainerStatus, output: Callable[[], str]) -> str:
    """Its last exit and (`output`) what it printed last; "" when it never exited."""
    last = status.last_state.terminated if status.last_state is not None else None
    if last is None:
        return ""
    said = " | ".join(output().strip().splitlines())
    return (
        f"; last exit code {last.exit_code} ({last.reason or 'Error'}), "
        f"restarted {status.restart_count} time(s)" + (f"; it printed: {said}" if said else "")
    )


def _completed(status: V1ContainerStatus) -> bool:
    done = status.state.terminated if status.state is not None else None
    return done is not None and done.exit_code == 0


def _container_reason(
    status: V1ContainerStatus, unhealthy: str, output: Callable[[], str]
) -> str | None:
    """Why this container is not ready, or None when it is (`output`: its last lines)."""
    state = status.state
    name = status.name
    if state is not None and state.waiting is not None:
        reason = state.waiting.reason or "Waiting"
        exited = _last_exit(status, output)
        if exited:
            return f"container {name}: {reason}{exited}"
        message = state.waiting.message if reason not in STARTING else ""
        return f"container {name}: {reason}" + (f": {message}" if message else "")
    if state is not None and state.terminated is not None:
        t = state.terminated
        return f"container {name}: terminated ({t.reason or 'Error'}, exit code {t.exit_code})"
    if status.ready:
        return None
    return f"container {name} not ready: {unhealthy or 'no probe result yet'}" + _last_exit(
        status, output
    )


def pod_reason(
    pod: V1Pod, unhealthy: str = "", tail: Tail = lambda _pod, _container: ""
) -> str | None:
    """Why `pod` is not ready (`unhealthy`: the message of its last Unhealthy Event; `tail`:
    what a crashing container printed last), or None when it is ready or has finished."""
    status = pod.status
    if status.phase == "Succeeded":
        return None
    if status.phase == "Failed":
        return f"Failed: {status.message or status.reason or 'see its events'}"
    conditions = {c.type: c for c in status.conditions or []}
    ready = conditions.get("Ready")
    if ready is not None and ready.status == "True":
        return None
    scheduled = conditions.get("PodScheduled")
    if scheduled is not None and scheduled.status != "True":
        return f"Pending: {scheduled.message or scheduled.reason or 'not scheduled'}"
    inits = status.init_container_statuses or []
    # An init container that finished is not a reason; the next one or the main ones are.
    waiting = [c for c in inits if not _completed(c)][:1] or status.container_statuses or []
    for c in waiting:
        output = functools.partial(tail, pod, c.name)
        if (why := _container_reason(c, unhealthy, output)) is not None:
            return why
    if ready is not None and ready.message:
        return str(ready.message)
    return status.phase or "Pending"


def unhealthy_messages(events: list[dict[str, Any]]) -> dict[str, str]:
    """Pod name -> the message of its last Unhealthy Event (events.k8s.io/v1 JSON)."""
    records = sorted((event_record(e) for e in events), key=lambda r: r.time)
    return {
        r.object.removeprefix("Pod/"): r.message
        for r in records
        if r.reason == "Unhealthy" and r.object.startswith("Pod/")
    }


def unready_lines(
    pods: list[V1Pod], unhealthy: Mapping[str, str], tail: Tail = lambda _pod, _container: ""
) -> list[str]:
    """One line per workload with unready pods: its first such pod and the reason."""
    by_owner: dict[tuple[str, str, str], list[tuple[V1Pod, str]]] = {}
    for pod in sorted(pods, key=lambda p: (p.metadata.namespace, p.metadata.name)):
        why = pod_reason(pod, unhealthy.get(pod.metadata.name, ""), tail)
        if why is not None:
            kind, owner = owner_of(pod)
            by_owner.setdefault((pod.metadata.namespace, kind, owner), []).append((pod, why))
    lines = []
    for (ns, kind, owner), found in by_owner.items():
        pod, why = found[0]
        who = f"{kind} {owner}" if kind else "no controller"
        more = f", {len(found) - 1} more unready" if len(found) > 1 else ""
        lines.append(f"pod {ns}/{pod.metadata.name} ({who}{more}): {why}")
    return lines
