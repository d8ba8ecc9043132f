"""A real redis-server on a free 127.0.0.1 port, with a password and the caller's policies."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from finchsim.errors import PlatformError
from finchsim.platform.local.processes import Proc, spawn
from finchsim.platform.ports import free_port


@dataclass(frozen=True)
class RedisParams:
    """How a client reaches the server."""

    host: str
    port: int
    password: str

    def env(self) -> dict[str, str]:
        """The variables the Finch backend reads."""
        return {
            "REDIS_HOST": self.host,
            "REDIS_PORT": str(self.port),
            "REDIS_PASSWORD": self.password,
        }


def _command(*words: str) -> bytes:
    out = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class LocalRedis:
    """start() writes redis.conf (mode 0600: it holds the password) and starts the server."""

    def __init__(
        self,
        directory: Path,
        *,
        password: str,
        maxmemory_policy: str = "allkeys-lru",
        appendonly: bool = True,
        maxmemory: str | None = None,
        port: int | None = None,
        binary: str = "redis-server",
        host: str = "127.0.0.1",
    ) -> None:
        self.directory = Path(directory).resolve()
        self.log = self.directory / "redis.log"
        self.binary = binary
        self.maxmemory_policy = maxmemory_policy
        self.appendonly = appendonly
        self.maxmemory = maxmemory
        self.params = RedisParams(host, port or free_port(), password)
        self.proc: Proc | None = None

    def _write_config(self) -> Path:
        lines = [
            f"bind {self.params.host}",
            f"port {self.params.port}",
            "protected-mode yes",
            "daemonize no",
            f'dir "{self.directory}"',
            'logfile ""',
            f"maxmemory-policy {self.maxmemory_policy}",
            f"appendonly {'yes' if self.appendonly else 'no'}",
            'save ""',  # chosen: AOF (the seed's persistence) only, no RDB snapshots
        ]
        if self.maxmemory:
            lines.append(f"maxmemory {self.maxmemory}")
        if self.params.password:
            lines.append(f'requirepass "{self.params.password}"')
        path = self.directory / "redis.conf"
        path.touch(mode=0o600)
        path.write_text("\n".join(lines) + "\n")
        return path

    def ping(self, timeout: float = 1.0) -> bool:
        """True when the server answers PING (after AUTH) and is not loading its data."""
        request = _command("AUTH", self.params.password) if self.params.password else b""
        request += _command("PING")
        try:
            with socket.create_connection((self.params.host, self.params.port), timeout) as sock:
                sock.sendall(request)
                reply = b""
                while b"PONG" not in reply and b"-" not in reply:
                    chunk = sock.recv(256)
                    if not chunk:
                        break
                    reply += chunk
        except OSError:
            return False
        return b"+PONG" in reply

    def start(self, timeout: float = 20.0, cgroup_procs: Sequence[Path] = ()) -> RedisParams:
        """Start and wait until PING answers; raise PlatformError with the log tail if not."""
        if self.running:
            return self.params
        self.directory.mkdir(parents=True, exist_ok=True)
        proc = self.proc = spawn(
            [self.binary, str(self._write_config())],
            env=dict(os.environ),
            cwd=self.directory,
            log_path=self.log,
            cgroup_procs=cgroup_procs,
        )
        deadline = time.monotonic() + timeout
        try:
            while not self.ping():
                if not proc.alive():
                    raise PlatformError(
                        f"redis-server exited at start (code "
                        f"{proc.returncode}); {self.log}:\n"
                        f"{proc.tail(20)}"
                    )
                if time.monotonic() > deadline:
                    raise PlatformError(
                        f"redis-server not ready after {timeout}s; {self.log}:\n{proc.tail(20)}"
                    )
                time.sleep(0.05)
        except BaseException:
            proc.kill()
            self.proc = None
            raise
        return self.params

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (redis flushes the AOF and exits); SIGKILL the group after `timeout`."""
        if self.proc is not None:
            self.proc.terminate(timeout)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.alive()
