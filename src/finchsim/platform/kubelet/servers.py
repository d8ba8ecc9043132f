"""The images whose program the local platform starts through a launcher class (PostgreSQL,
Redis: initdb, the password, the config file), on the pod's own address and their real ports.
Both wait until the server answers, so they are started from the sync thread like any process
(PDEATHSIG ties them to it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from finchsim.platform.local.postgres import LocalPostgres
from finchsim.platform.local.processes import Proc
from finchsim.platform.local.redis import LocalRedis
from finchsim.platform.local.runtimes import Launch, PodEnv

PG_DATA = "/var/lib/postgresql/data"


def start_server(launch: Launch, pod: PodEnv, cgroup_procs: Sequence[Path]) -> Proc:
    """Start the server `launch` describes and return its process. Raises PlatformError."""
    if launch.kind == "postgres":
        return _postgres(launch, pod, cgroup_procs)
    return _redis(launch, pod, cgroup_procs)


def _postgres(launch: Launch, pod: PodEnv, cgroup_procs: Sequence[Path]) -> Proc:
    settings = {}
    words = iter(launch.argv)
    for word in words:
        if word == "-c":
            key, _, value = next(words, "").partition("=")
            settings[key] = value
    env = launch.env
    server = LocalPostgres(
        pod.mounts.get(PG_DATA, pod.pod_dir / "pgdata"),
        dbname=env.get("POSTGRES_DB", "finch"),
        user=env.get("POSTGRES_USER", "finch"),
        password=env.get("POSTGRES_PASSWORD"),
        port=5432,
        settings=settings,
        host=pod.ip,
    )
    server.start(cgroup_procs=cgroup_procs)
    assert server.proc is not None
    return server.proc


def _redis(launch: Launch, pod: PodEnv, cgroup_procs: Sequence[Path]) -> Proc:
    opts: dict[str, str] = {}
    words = list(launch.argv)
    for i, word in enumerate(words):
        if word.startswith("--") and i + 1 < len(words):
            opts[word[2:]] = words[i + 1]
    server = LocalRedis(
        Path(opts.get("dir", str(pod.pod_dir / "data"))),
        password=opts.get("requirepass", ""),
        maxmemory_policy=opts.get("maxmemory-policy", "noeviction"),
        appendonly=opts.get("appendonly", "no") == "yes",
        maxmemory=opts.get("maxmemory"),
        port=int(opts.get("port", 6379)),
        host=pod.ip,
    )
    server.start(cgroup_procs=cgroup_procs)
    assert server.proc is not None
    return server.proc
