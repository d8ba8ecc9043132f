"""How a container of the manifests runs as a process on this machine.

The local platform has no container runtime, so each image is mapped, explicitly, to the local
program that does the same job (the registry `RUNTIMES` below; an unknown image is an error
listing the known ones):

    finch-sim/finch-backend   the reference workload's command, run from cluster/workload/backend
    finch-sim/finch-frontend  nginx with the workload's nginx.conf template, serving the built SPA
                              copied into the pod's directory, as the image carries it
    postgres                  PostgreSQL 15 from /usr/lib/postgresql/15/bin (args `-c k=v` kept);
                              with a `command` (the backup Job's script), that script, with the
                              PostgreSQL client tools on PATH
    redis                     redis-server with the manifest's args
    python                    the command, with this machine's python3 (standard library)
    */postgres-exporter       Debian's prometheus-postgres-exporter
    */redis_exporter          Debian's prometheus-redis-exporter

Every pod shares 127.0.0.1; each container port gets a free host port. `localize` rewrites what
the container would see in a pod: `$(VAR)` expansion, `0.0.0.0:<port>` binds, mount paths, and
Service names (DNS) to 127.0.0.1 with the Service's local port. A script run by the images'
`/bin/sh` (busybox ash in the alpine images, which knows `set -o pipefail`) runs under bash:
Debian's /bin/sh (dash) does not."""

from __future__ import annotations

import re
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from finchsim.errors import InputError, PlatformError, Problem
from finchsim.platform.topology import Container

PG_BIN = Path("/usr/lib/postgresql/15/bin")
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The kubelet's expansion: `$(VAR)` of a defined variable, `$$` is a literal `$`.
_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_SHELLS = ("/bin/sh", "sh", "/bin/ash")


@dataclass(frozen=True)
class PodEnv:
    """Where one container of one pod lives on this machine."""

    pod: str
    pod_dir: Path
    ports: dict[int, int]  # containerPort -> host port (every container of the pod)
    mounts: dict[str, Path]  # mountPath -> local directory
    services: dict[str, dict[int, int]]  # Service name -> {service port -> local port}
    project_root: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    # The pod's own address (finch's kubelet gives each pod a loopback address of its own) and
    # the Services' addresses (their cluster IPs there); 127.0.0.1 for the emulated platform.
    ip: str = "127.0.0.1"
    service_hosts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    user: str | None = None
    # Process settings for an image whose program is started by a launcher class.
    kind: str = "process"  # process | postgres | redis
    death_signal: int = signal.SIGKILL  # sent when the harness dies (`processes.spawn`)


def localize_env(container: Container, pod: PodEnv) -> dict[str, str]:
    """The container's environment as it should be locally (service names, ports, paths)."""
    env = {k: _paths(v, pod) for k, v in container.env.items()}
    # Service hosts/ports first, so values composed from them (DATABASE_URL) come out local.
    hosts = {name for name in pod.services} | {
        f"{n}.{suffix}" for n in pod.services for suffix in ("svc", "svc.cluster.local")
    }
    for key, value in list(env.items()):
        name = value.split(".")[0]
        if value in hosts and key.endswith("_HOST"):
            env[key] = pod.service_hosts.get(name, "127.0.0.1")
            port_key = key[: -len("_HOST")] + "_PORT"
            if port_key in env and env[port_key].isdigit():
                env[port_key] = str(pod.services[name].get(int(env[port_key]), env[port_key]))
    env = {k: _expand(v, env) for k, v in env.items()}
    for key, value in list(env.items()):
        # The container's own ports, told to the program through the environment.
        own_port = key.endswith("PORT") and value.isdigit() and int(value) in pod.ports
        if own_port and not _is_service_port(key, env, pod):
            env[key] = str(pod.ports[int(value)])
        if value == "0.0.0.0":  # "every interface" in a pod: its loopback address only here
            env[key] = pod.ip
        if value.startswith("0.0.0.0:") and value[8:].isdigit() and int(value[8:]) in pod.ports:
            env[key] = f"{pod.ip}:{pod.ports[int(value[8:])]}"
    env.update(pod.extra_env)
    env.setdefault("PATH", IMAGE_PATH)  # what a container image's PATH would hold
    return env


def localize_args(words: tuple[str, ...], env: dict[str, str], pod: PodEnv) -> list[str]:
    """`$(VAR)` expansion as the kubelet does it, then binds and mount paths made local."""
    out = []
    for word in words:
        word = _expand(word, env)
        word = re.sub(
            r"0\.0\.0\.0:(\d+)",
            lambda m: f"{pod.ip}:{pod.ports.get(int(m.group(1)), int(m.group(1)))}",
            word,
        )
        out.append(_paths(word, pod))
    return out


def _expand(text: str, env: dict[str, str]) -> str:
    return _REF.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def _is_service_port(key: str, env: dict[str, str], pod: PodEnv) -> bool:
    host = env.get(key[: -len("_PORT")] + "_HOST")
    return key.endswith("_PORT") and (host == "127.0.0.1" or host in pod.service_hosts.values())


def _paths(text: str, pod: PodEnv) -> str:
    """Mount paths to their local directories, in one pass (a local directory may itself start
    with another mount's path, e.g. /tmp): at the start of the text, after `=`/`:` (flags,
    URLs) or after whitespace/quotes (a script's text)."""
    if not pod.mounts:
        return text
    either = "|".join(re.escape(m) for m in sorted(pod.mounts, key=len, reverse=True))
    pattern = rf"(?:^|(?<=[=:\s\"']))({either})(?=[/\s\"';]|$)"
    return re.sub(pattern, lambda m: str(pod.mounts[m.group(1)]), text)


def _venv_tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def backend(container: Container, pod: PodEnv) -> Launch:
    env = localize_env(container, pod)
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(pod.pod_dir / "prometheus-multiproc"))
    Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
    argv = localize_args(container.command + container.args, env, pod)
    argv[0] = _venv_tool(argv[0])
    env["PATH"] = f"{Path(sys.executable).parent}:{IMAGE_PATH}"
    return Launch(argv, env, pod.project_root / "cluster" / "workload" / "backend")


def frontend(container: Container, pod: PodEnv) -> Launch:
    env = localize_env(container, pod)
    root = pod.project_root / "cluster" / "workload" / "frontend"
    listen = pod.ports[next(iter(container.ports.values()))]
    values = {
        "FINCH_LISTEN_ADDRESS": pod.ip,
        "FINCH_LISTEN_PORT": str(listen),
        "FINCH_STATIC_ROOT": str(_image_copy(root / "dist", pod.pod_dir / "html")),
        "FINCH_RUN_DIR": str(pod.pod_dir),
        "FINCH_API_BASE_URL": env.get("FINCH_API_BASE_URL", ""),
    }
    for name in ("nginx.conf", "config.js"):
        template = (root / "nginx" / f"{name}.template").read_text()
        text = re.sub(
            r"\$\{(FINCH_[A-Z_]+)\}", lambda m: values.get(m.group(1), m.group(0)), template
        )
        (pod.pod_dir / name).write_text(text)
    conf = pod.pod_dir / "nginx.conf"
    # nginx's workers drop to `nobody` when started as root; they only read the SPA.
    return Launch(
        ["nginx", "-c", str(conf), "-p", str(pod.pod_dir), "-g", "daemon off;"],
        env,
        pod.pod_dir,
        death_signal=signal.SIGTERM,  # its workers outlive a SIGKILLed master
    )


def _image_copy(source: Path, target: Path) -> Path:
    """What the image carries (`COPY --from=build /src/dist /usr/share/nginx/html`, then
    `rm dist/config.js`): the built files, copied once per pod into its own directory, readable
    by everyone. Served from the checkout, they would be out of reach of nginx's workers (they
    run as `nobody`) whenever the checkout sits in a directory only its owner can enter (under
    /root, in a `mktemp -d`). Raises PlatformError when the frontend was never built."""
    if target.exists():  # a restarted container: the same image
        return target
    if not (source / "index.html").exists():
        raise PlatformError(f"{source} holds no built frontend: run `make setup`")
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial, ignore=shutil.ignore_patterns("config.js"))
    for path in (partial, *partial.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    partial.rename(target)
    return target


def postgres(container: Container, pod: PodEnv) -> Launch:
    env = localize_env(container, pod)
    if container.command:  # the image's client tools driven by a script: the backup Job
        return _script(container, pod, env, tool_dir=PG_BIN)
    return Launch(localize_args(container.args, env, pod), env, pod.pod_dir, kind="postgres")


def _script(container: Container, pod: PodEnv, env: dict[str, str], tool_dir: Path) -> Launch:
    argv = localize_args(container.command + container.args, env, pod)
    if argv[0] in _SHELLS:
        argv[0] = "/bin/bash"
    env["PATH"] = f"{tool_dir}:{IMAGE_PATH}"
    cwd = pod.mounts.get("/tmp", pod.pod_dir)
    return Launch(argv, env, cwd)


def redis(container: Container, pod: PodEnv) -> Launch:
    env = localize_env(container, pod)
    args = localize_args(container.command[1:] + container.args, env, pod)
    return Launch(args, env, pod.pod_dir, kind="redis")


def postgres_exporter(container: Container, pod: PodEnv) -> Launch:
    env = localize_env(container, pod)
    listen = pod.ports[next(iter(container.ports.values()))]
    for key, value in list(env.items()):
        env[key] = re.sub(
            r"(127\.0\.0\.1|localhost):5432", f"{pod.ip}:{pod.ports.get(5432, 5432)}", value
        )
    return Launch(
        ["prometheus-postgres-exporter", f"--web.listen-address={pod.ip}:{listen}"],
        env,
        pod.pod_dir,
    )


def redis_exporter(container: Container, pod: PodEnv) -> Launch:
    env = localize_env(container, pod)
    listen = pod.ports[next(iter(container.ports.values()))]
    addr = env.get("REDIS_ADDR", "redis://127.0.0.1:6379")
    addr = re.sub(r":6379\b", f":{pod.ports.get(6379, 6379)}", addr)
    addr = re.sub(r"//(127\.0\.0\.1|localhost):", f"//{pod.ip}:", addr)  # same pod: its address
    # The password stays in the environment (REDIS_PASSWORD), off the command line.
    args = [
        "prometheus-redis-exporter",
        f"-web.listen-address={pod.ip}:{listen}",
        f"-redis.addr={addr}",
    ]
    return Launch(args, env, pod.pod_dir)


def python(container: Container, pod: PodEnv) -> Launch:
    """The `python` image: its command run by this machine's Python 3 (not the harness's
    virtualenv: an image's Python has only the standard library)."""
    env = localize_env(container, pod)
    argv = localize_args(container.command + container.args, env, pod)
    if not argv:
        argv = ["python3"]
    if argv[0] in ("python", "python3", "/usr/local/bin/python", "/usr/bin/python3"):
        argv[0] = shutil.which("python3", path=IMAGE_PATH) or "/usr/bin/python3"
    elif argv[0] in _SHELLS:
        argv[0] = "/bin/bash"
    return Launch(argv, env, pod.pod_dir)


RUNTIMES: dict[str, Callable[[Container, PodEnv], Launch]] = {
    "finch-sim/finch-backend": backend,
    "finch-sim/finch-frontend": frontend,
    "postgres": postgres,
    "redis": redis,
    "postgres-exporter": postgres_exporter,
    "redis_exporter": redis_exporter,
    "python": python,
}


def runtime_for(container: Container, source: str = "") -> Callable[[Container, PodEnv], Launch]:
    """The local runtime of a container's image (registry, tag and path prefix ignored for the
    third-party images). Raises InputError naming the image and the known ones."""
    image = container.image.split("@")[0].rsplit(":", 1)[0]
    if image in RUNTIMES:
        return RUNTIMES[image]
    short = image.rsplit("/", 1)[-1]
    if short in RUNTIMES:
        return RUNTIMES[short]
    known = ", ".join(sorted(RUNTIMES))
    raise InputError(
        [
            Problem(
                source,
                f"container {container.name}",
                (
                    f"image {container.image!r} has no local runtime; "
                    f"the local platform knows: {known}"
                ),
            )
        ]
    )
