"""A real PostgreSQL 15 server in a directory, on a free 127.0.0.1 port, password auth only.

As root, initdb and the server run as the `postgres` OS user (initdb refuses root) and the
directory is chowned to it; unix sockets are off, so every client (the app, psql here) goes
through TCP with SCRAM passwords, as in the cluster.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from finchsim.errors import PlatformError
from finchsim.platform.local.processes import Proc, spawn
from finchsim.platform.ports import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"


@dataclass(frozen=True)
class PostgresParams:
    """How a client reaches the database."""

    host: str
    port: int
    dbname: str
    user: str
    password: str

    def env(self) -> dict[str, str]:
        """The variables the Finch backend reads (what the ConfigMap/Secret provide)."""
        return {
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_DB": self.dbname,
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
        }


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class LocalPostgres:
    """start() initialises (once) and starts the server; stop() shuts it down (fast mode).

    The server is a child of this process (never daemonised, PDEATHSIG set by `spawn`), so it
    cannot outlive the harness; `cgroup_procs` puts it under the caller's CPU/memory limits."""

    def __init__(
        self,
        directory: Path,
        *,
        dbname: str = "finch",
        user: str = "finch",
        password: str | None = None,
        port: int | None = None,
        settings: dict[str, str] | None = None,
        bin_dir: Path = PG_BIN,
        host: str = "127.0.0.1",
    ) -> None:
        self.directory = Path(directory).resolve()
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.bin_dir = bin_dir
        self.port = port or free_port()
        self.settings = dict(settings or {})
        self.params = PostgresParams(
            host, self.port, dbname, user, password or secrets.token_hex(16)
        )
        self.proc: Proc | None = None
        self._os_user = SUPERUSER if os.geteuid() == 0 else None

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", self._os_user, "--", *argv] if self._os_user else argv

    def _superuser_password(self) -> str:
        path = self.directory / ".superuser-password"
        if not path.exists():
            path.write_text(secrets.token_hex(16))
            path.chmod(0o600)
        return path.read_text().strip()

    def _initdb(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        pwfile = self.directory / ".pwfile"
        pwfile.write_text(self._superuser_password() + "\n")
        pwfile.chmod(0o600)
        if self._os_user:
            pw = pwd.getpwnam(self._os_user)
            for path in (self.directory, pwfile):
                os.chown(path, pw.pw_uid, pw.pw_gid)
            probe = subprocess.run(self._as_owner(["test", "-w", str(self.directory)]), check=False)
            if probe.returncode != 0:
                raise PlatformError(
                    f"the postgres OS user cannot write to {self.directory}: every parent "
                    "directory must be searchable by it (use a directory under /tmp)"
                )
        argv = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--pwfile",
            str(pwfile),
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
            "--no-locale",
            "--encoding=UTF8",
        ]
        try:
            done = subprocess.run(
                self._as_owner(argv), capture_output=True, text=True, timeout=120, check=False
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise PlatformError(f"initdb failed in {self.data}:\n{done.stdout}{done.stderr}")

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL as the superuser over TCP; return psql's unaligned output."""
        env = {**os.environ, "PGPASSWORD": self._superuser_password(), "PGCONNECT_TIMEOUT": "2"}
        argv = [
            str(self.bin_dir / "psql"),
            "-h",
            self.params.host,
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            dbname,
            "-v",
            "ON_ERROR_STOP=1",
            "-At",
            "-c",
            sql,
        ]
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=60, check=False
        )
        if done.returncode != 0:
            raise PlatformError(f"psql failed: {sql}\n{done.stderr.strip()}")
        return done.stdout.strip()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc is not None and not self.proc.alive():
                raise PlatformError(
                    f"PostgreSQL exited at start (code {self.proc.returncode}); "
                    f"{self.log}:\n{self.proc.tail(20)}"
                )
            try:
                self.psql("SELECT 1")
                return
            except PlatformError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise PlatformError(
            f"PostgreSQL not ready after {timeout}s ({last}); {self.log}:\n"
            f"{self.proc.tail(20) if self.proc else ''}"
        )

    def create_database(self, name: str) -> None:
        """Create database `name` owned by the app user, unless it exists."""
        if not self.psql(f"SELECT 1 FROM pg_database WHERE datname = {_quote_literal(name)}"):
            self.psql(
                f"CREATE DATABASE {_quote_ident(name)} OWNER {_quote_ident(self.params.user)}"
            )

    def _ensure_app_role(self) -> None:
        p = self.params
        verb = (
            "ALTER"
            if self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = {_quote_literal(p.user)}")
            else "CREATE"
        )
        self.psql(f"{verb} ROLE {_quote_ident(p.user)} LOGIN PASSWORD {_quote_literal(p.password)}")
        self.create_database(p.dbname)

    def start(self, timeout: float = 30.0, cgroup_procs: Sequence[Path] = ()) -> PostgresParams:
        """Initialise if needed, start, wait until ready, create role and database."""
        if self.running:
            return self.params
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        settings = {
            "listen_addresses": self.params.host,
            "unix_socket_directories": "",
            "port": str(self.port),
            **self.settings,
        }
        argv = [str(self.bin_dir / "postgres"), "-D", str(self.data)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        self.proc = spawn(
            argv,
            env={**os.environ, "LC_ALL": "C"},
            cwd=self.directory,
            log_path=self.log,
            user=self._os_user,
            cgroup_procs=cgroup_procs,
        )
        try:
            self._wait_ready(timeout)
            self._ensure_app_role()
        except BaseException:
            self.kill()
            raise
        return self.params

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: abort transactions, checkpoint); SIGKILL after `timeout`."""
        if self.proc is not None and self.proc.alive():
            os.kill(self.proc.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.popen.wait(timeout)
            self.proc.kill()  # no-op when gone; reaps stray backends of a hung shutdown
        self.proc = None

    def kill(self) -> None:
        """Crash-stop (SIGKILL of the whole group): the next start runs crash recovery."""
        if self.proc is not None:
            self.proc.kill()
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.alive()
