"""Why each pod is not ready, as `kubectl describe pod` and `kubectl logs --previous` would show
it: for the message `up` gives when the topology is not ready in time.

One entry per unready pod: still Pending (the scheduler's message), an init container or a
container that keeps exiting (its exit code, restarts and the last lines of its log), or a
probe that fails (what it requests and what it got, from one more attempt now)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from finchsim.platform.local.pods import ContainerRun, Pod, check
from finchsim.platform.topology import Probe

LOG_LINES = 5


def unready_reasons(pods: list[Pod], pending: dict[str, str]) -> list[str]:
    """`pod: reason` for every live pod that is not ready (several lines for a log tail); pods
    of one workload with the same reason share one entry."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for pod in pods:
        if pod.ready or pod.deleting or pod.workload.kind == "Job":
            continue
        key = (pod.workload.name, _reason(pod, pending.get(pod.name)))
        grouped.setdefault(key, []).append(pod.name)
    reasons = []
    for (workload, reason), names in grouped.items():
        more = f" (and {len(names) - 1} more of {workload})" if len(names) > 1 else ""
        reasons.append(f"{names[0]}{more}: {reason}")
    return reasons


def _reason(pod: Pod, pending: str | None) -> str:
    if not pod.node:
        return f"Pending: {pending or 'not scheduled'}"
    for run in pod.inits:
        if not run.completed:
            return _container(pod, run, "init container")
    for run in pod.containers:
        if not run.running or run.restarts:
            return _container(pod, run, "container")
    for run in pod.containers:
        for kind in ("startup", "readiness"):
            probe: Probe | None = getattr(run.spec, kind)
            if probe is not None and not getattr(run, kind).passed:
                return f"container {run.spec.name}: {_probe(pod, run, kind, probe)}"
    return "not ready yet (no probe has failed)"


def _container(pod: Pod, run: ContainerRun, what: str) -> str:
    name = f"{what} {run.spec.name}"
    if run.restarts == 0:
        state = "running" if run.running else "waiting to start"
        return f"{name} {state}" + ("" if what == "container" else ", not completed yet")
    code = f"exited with code {run.exit_code}" if run.exit_code is not None else "failed"
    status = "running again" if run.running else "CrashLoopBackOff"
    head = f"{name} {code}, restarted {run.restarts} time(s) ({status})"
    tail = _log_tail(pod.env.pod_dir / f"{run.spec.name}.log")
    return f"{head}; last log lines:\n{tail}" if tail else f"{head}; its log is empty"


def _log_tail(path: Path) -> str:
    """The last distinct lines: every restart appends the same complaint to the one log."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    last: list[str] = []
    for line in reversed(lines):
        if line.strip() and line not in last:
            last.insert(0, line)
            if len(last) == LOG_LINES:
                break
    return "\n".join(f"    {line}" for line in last)


def _probe(pod: Pod, run: ContainerRun, kind: str, probe: Probe) -> str:
    scheme, port, path = pod.probe_target(run, probe)
    failures = getattr(run, kind).failures
    if scheme == "http":
        target = f"GET http://127.0.0.1:{port}{path}"
        got = _http_outcome(port, path, probe.timeout)
    else:
        target = f"TCP 127.0.0.1:{port}"
        got = "connects" if check("tcp", port, "", probe.timeout) else "connection refused"
    return f"{kind} probe failing ({failures} in a row): {target}: {got}"


def _http_outcome(port: int, path: str, timeout: float) -> str:
    """What one attempt gets now: the status and the start of the body, or the error."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return f"HTTP {resp.status} (passes now)"
    except urllib.error.HTTPError as exc:
        body = exc.read(300).decode(errors="replace").strip().replace("\n", " ")
        return f"HTTP {exc.code}" + (f": {body}" if body else "")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"no answer ({reason})"
