"""`finchsim calibrate`: measure the load model's per-request costs on the local platform.

The kwok platform has no processes, so its pods' CPU and memory come from the load model
(`analysis/load-model.yaml`, `finchsim.models.load`). This command measures that model from a
real run: the whole topology up locally, seeded like `make simulate`, then
1. an idle window: each container's CPU rate and memory with no traffic (per pod);
2. a load window: the profile driven through the ingress by Locust.
From Prometheus (the same cAdvisor and ingress-nginx names on every platform):

    cpuSecondsPerRequest = (Σ increase(container_cpu_usage_seconds_total) over the window
                            - idle CPU rate * the pods' seconds alive) / requests through the host
    memoryBytesPerRps    = (working set per pod under load - idle working set) / (rps per pod)

A workload's requests are those of the Ingress host whose rule reaches it (the frontend's for
finch.example.com); every other workload (workers, datastores, exporters) is charged to the API
host, whose requests cause its work. The result keeps the request mix of the profile."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from prometheus_api_client import PrometheusConnect
from rich.console import Console

from finchsim.durations import parse_duration
from finchsim.errors import PlatformError
from finchsim.load.locust_run import LocustRun
from finchsim.load.seed import seed
from finchsim.models.load import MODEL_FILE
from finchsim.platform.base import Platform
from finchsim.project import Project
from finchsim.running import EventLog, run_platform

NAMESPACE = "finch-production"
API_HOST = "api.finch.example.com"
IDLE_SECONDS = 30


def _vector(prom: PrometheusConnect, query: str, at: float) -> dict[tuple[str, ...], float]:
    """An instant query's samples by their (pod, container) or (host,) labels."""
    result = prom.custom_query(query, params={"time": at})
    out = {}
    for sample in result:
        labels = sample["metric"]
        key = tuple(labels[k] for k in ("pod", "container", "host") if k in labels)
        out[key] = float(sample["value"][1])
    return out


def _cpu_and_memory(
    prom: PrometheusConnect, start: float, end: float, scrape: float
) -> tuple[
    dict[tuple[str, ...], float], dict[tuple[str, ...], float], dict[tuple[str, ...], float]
]:
    """Per (pod, container): CPU seconds used, seconds alive (samples x scrape interval) and
    the mean working set, over [start, end]."""
    window = f"{round(end - start)}s"
    sel = f'{{namespace="{NAMESPACE}",container!=""}}'
    cpu = _vector(prom, f"increase(container_cpu_usage_seconds_total{sel}[{window}])", end)
    samples = _vector(
        prom, f"count_over_time(container_cpu_usage_seconds_total{sel}[{window}])", end
    )
    alive = {key: n * scrape for key, n in samples.items()}
    memory = _vector(prom, f"avg_over_time(container_memory_working_set_bytes{sel}[{window}])", end)
    return cpu, alive, memory


def run_calibrate(
    platform: Platform,
    project: Project,
    overlay: str,
    profile: str,
    out: Console,
    err: Console,
    events: EventLog,
) -> int:
    """`finchsim calibrate`: up, seed, measure the load model, write it, down."""
    profile_path = project.loadtests / "profiles" / f"{profile}.yaml"

    def drive(p: Platform, _tick: Callable[[], None]) -> int:
        seed(p, out.print)
        run_id = str(getattr(p, "run_id"))  # noqa: B009 (every Kubernetes platform has one)
        load_dir = Path(getattr(p, "run_dir")) / "calibrate"  # noqa: B009
        load_dir.mkdir()
        model = measure(p, profile_path, load_dir, {}, out.print)
        path = write_model(project.root, model, run_id, overlay, profile)
        out.print(f"wrote {project.rel(path)}")
        return 0

    return run_platform(platform, out, err, events, hold=False, then=drive)


def scrape_interval(prometheus_url: str) -> float:
    """Seconds between two scrapes, as the running Prometheus is configured."""
    with urllib.request.urlopen(f"{prometheus_url}/api/v1/status/config", timeout=10) as resp:
        config = yaml.safe_load(json.load(resp)["data"]["yaml"])
    return parse_duration(config["global"]["scrape_interval"])


def measure(
    platform: Platform,
    profile_path: Path,
    run_dir: Path,
    owners: dict[str, str],
    say: Callable[[str], None],
) -> dict[str, dict[str, dict[str, Any]]]:
    """Run the idle and load windows on an up, seeded platform; return the model's workloads."""
    prom = PrometheusConnect(url=platform.prometheus_url(), disable_ssl=True)
    scrape = scrape_interval(platform.prometheus_url())

    def remember_owners() -> None:
        owners.update({p.name: p.owner for p in platform.pods()})

    remember_owners()
    say(f"idle window: {IDLE_SECONDS} s without traffic…")
    idle_start = time.time()
    platform.wait_for(lambda: time.time() - idle_start >= IDLE_SECONDS, IDLE_SECONDS + 30, "idle")
    idle_end = time.time()
    say("load window: driving the profile through the ingress…")
    with LocustRun(profile_path, platform.ingress_url(API_HOST), run_dir) as run:
        load_start = time.time()
        run.start()
        while run.running:
            platform.poll()
            remember_owners()
            time.sleep(0.5)
        result = run.collect()
    load_end = time.time()
    # Let Prometheus scrape the last samples of the window before reading it.
    platform.wait_for(lambda: time.time() > load_end + 2 * scrape, 30, "the last scrape")
    idle_cpu, idle_alive, idle_mem = _cpu_and_memory(prom, idle_start, idle_end, scrape)
    cpu, alive, memory = _cpu_and_memory(prom, load_start, load_end, scrape)
    requests = _vector(
        prom,
        f'sum by (host) (increase(nginx_ingress_controller_requests{{namespace="{NAMESPACE}"}}'
        f"[{round(load_end - load_start)}s]))",
        load_end,
    )
    if not requests:
        raise PlatformError("calibrate: Prometheus has no ingress requests for the load window")
    say(f"Locust: {result.requests} requests, {result.failures} failures")
    return fit(
        owners, idle_cpu, idle_alive, idle_mem, cpu, alive, memory, requests, load_end - load_start
    )


def fit(
    owners: dict[str, str],
    idle_cpu: dict[tuple[str, ...], float],
    idle_alive: dict[tuple[str, ...], float],
    idle_mem: dict[tuple[str, ...], float],
    cpu: dict[tuple[str, ...], float],
    alive: dict[tuple[str, ...], float],
    memory: dict[tuple[str, ...], float],
    requests: dict[tuple[str, ...], float],
    window: float,
) -> dict[str, dict[str, dict[str, Any]]]:
    """The per-workload, per-container model from the two windows' samples (pure); `window`
    is the load window's length in seconds."""
    per: dict[tuple[str, str], dict[str, float]] = {}
    for (pod, container), used in cpu.items():
        workload = owners.get(pod)
        if workload is None:
            continue
        acc = per.setdefault((workload, container), {"cpu": 0.0, "alive": 0.0, "mem": 0.0, "n": 0})
        acc["cpu"] += used
        acc["alive"] += alive.get((pod, container), 0.0)
        acc["mem"] += memory.get((pod, container), 0.0)
        acc["n"] += 1
    idle: dict[tuple[str, str], tuple[float, float]] = {}
    for (pod, container), used in idle_cpu.items():
        workload = owners.get(pod)
        seconds = idle_alive.get((pod, container), 0.0)
        if workload is None or seconds <= 0:
            continue
        # The quietest pod of a workload is its idle cost (one may have been busy starting).
        rate, mem = used / seconds, idle_mem.get((pod, container), 0.0)
        known = idle.get((workload, container))
        idle[(workload, container)] = (rate, mem) if known is None or rate < known[0] else known
    hosts = {key[0]: value for key, value in requests.items()}
    model: dict[str, dict[str, dict[str, Any]]] = {}
    for (workload, container), acc in sorted(per.items()):
        host = "finch.example.com" if workload == "finch-frontend" else API_HOST
        count = hosts.get(host, 0.0)
        idle_rate, idle_memory = idle.get((workload, container), (0.0, 0.0))
        extra_cpu = max(0.0, acc["cpu"] - idle_rate * acc["alive"])
        pods = max(acc["n"], 1)
        rps_per_pod = count / window / pods if window else 0.0
        extra_mem = max(0.0, acc["mem"] / pods - idle_memory)
        cost: dict[str, float] = {
            "cpuSecondsPerRequest": round(extra_cpu / count, 6) if count else 0.0,
        }
        if rps_per_pod > 0:
            cost["memoryBytesPerRps"] = round(extra_mem / rps_per_pod)
        model.setdefault(workload, {})[container] = {
            "idle": {
                "cpu": f"{max(1, round(idle_rate * 1000))}m",
                "memory": f"{max(1, round(idle_memory / 2**20))}Mi",
            },
            "perHost": {host: cost},
        }
    return model


def write_model(
    project_root: Path, model: dict[str, Any], run_id: str, overlay: str, profile: str
) -> Path:
    path = project_root / MODEL_FILE
    doc = {
        "apiVersion": "finchsim/v1",
        "kind": "LoadModel",
        "description": (
            "Per-request CPU and memory of each container, measured on the local platform by "
            "`finchsim calibrate`; the kwok platform turns offered load into pod usage with it."
        ),
        "calibration": {
            "run": run_id,
            "overlay": overlay,
            "profile": profile,
            "measured": time.strftime("%Y-%m-%d"),
            "method": (
                "idle window then load window; increase(container_cpu_usage_seconds_total) "
                "minus idle CPU, over nginx_ingress_controller_requests of the host; see "
                "src/finchsim/calibrate.py"
            ),
        },
        "workloads": model,
    }
    header = "# Generated by `finchsim calibrate` (see calibration:); re-run it to refresh.\n"
    path.write_text(header + yaml.safe_dump(doc, sort_keys=False))
    return path
