"""Throwaway PostgreSQL, Redis and NATS servers on free loopback ports, each in its own temp dir.

Used by the service tests (session fixtures) and by ``python -m localdev``. Every server:
- binds 127.0.0.1 (or the address given, e.g. a container network's host side) on a free port that it
  keeps across ``stop()``/``start()`` (so clients can reconnect after a restart, which the readiness and
  reconnect tests rely on);
- dies with the process that started it (``PR_SET_PDEATHSIG``), and is stopped by PID, never by name;
- runs PostgreSQL as the ``postgres`` user when we are root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

PG_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/17/bin")
_PR_SET_PDEATHSIG = 1


LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    # Runs in the child between fork and exec: a crashed test run must not leave servers behind.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _wait_for_port(
    host: str, port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 20.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {timeout} s")


class Server:
    """A server process with a fixed port; subclasses say how to prepare and launch it."""

    name = "server"
    stop_signal = signal.SIGTERM

    def __init__(self, host: str = LOOPBACK) -> None:
        self.host = host
        self.port = free_port(host)
        self.dir = Path(tempfile.mkdtemp(prefix=f"venta-{self.name}-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = open(self.dir / "server.log", "ab")  # noqa: SIM115 (closed in cleanup)

    @property
    def url(self) -> str:
        raise NotImplementedError

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _popen_kwargs(self) -> dict[str, object]:
        return {}

    def _ready(self) -> None:
        """Block until the server answers (extra checks beyond an open port)."""

    def start(self) -> Server:
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.proc = subprocess.Popen(
            self._command(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            **self._popen_kwargs(),  # type: ignore[call-overload]
        )
        _wait_for_port(self.host, self.port, self.proc, self.name)
        self._ready()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(self.stop_signal)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        text = (self.dir / "server.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


class RedisServer(Server):
    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def _command(self) -> list[str]:
        return [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
        ]


class NatsServer(Server):
    """``config``: extra nats.conf text (the local run's users and their subject permissions); the
    address, port and JetStream store always come from the command line."""

    name = "nats"

    def __init__(self, host: str = LOOPBACK, config: str | None = None) -> None:
        super().__init__(host)
        self.config = None
        if config is not None:
            self.config = self.dir / "nats.conf"
            self.config.write_text(config)
            self.config.chmod(0o600)  # it holds passwords

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def _command(self) -> list[str]:
        # JetStream state lives in the temp dir, so a restart keeps streams and durable consumers.
        config = ["--config", str(self.config)] if self.config is not None else []
        return [
            shutil.which("nats-server") or "nats-server",
            *config,
            "-a",
            self.host,
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self.dir / "js"),
        ]


def _pg_bin(tool: str) -> str:
    for directory in PG_BIN_DIRS:
        candidate = Path(directory) / tool
        if candidate.exists():
            return str(candidate)
    found = shutil.which(tool)
    if found is None:
        raise RuntimeError(f"PostgreSQL's {tool} not found in {', '.join(PG_BIN_DIRS)} or on PATH")
    return found


def postgres_owner() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root: then its files and processes belong to ``postgres``
    (uid, gid); None when we are not root."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def as_user(owner: tuple[int, int] | None) -> dict[str, object]:
    """``subprocess`` arguments that run a child as ``owner`` (nothing when None)."""
    if owner is None:
        return {}
    return {"user": owner[0], "group": owner[1], "extra_groups": []}


def run_as(
    owner: tuple[int, int] | None, command: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``command`` as ``owner``; a failure raises with its output."""
    done = subprocess.run(
        command,
        check=False,
        capture_output=True,
        text=True,
        preexec_fn=die_with_parent,
        env=env,
        **as_user(owner),  # type: ignore[call-overload]
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:3])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done


class PostgresServer(Server):
    """PostgreSQL tuned for throwaway use (no fsync); superuser ``postgres`` with trust auth on loopback."""

    name = "postgres"
    # "Fast" shutdown: SIGTERM would wait for every client to disconnect first.
    stop_signal = signal.SIGINT

    def __init__(self, host: str = LOOPBACK) -> None:
        super().__init__(host)
        self.owner = postgres_owner()
        if self.owner is not None:
            os.chown(self.dir, *self.owner)
            os.chown(self.dir / "server.log", *self.owner)
        self._initialize()

    def _initialize(self) -> None:
        """Make the data directory (subclasses: another way, e.g. a clone of a primary)."""
        self.run_as_owner(
            [
                _pg_bin("initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )

    def run_as_owner(
        self, command: list[str], env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_as(self.owner, command, env)

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, database: str) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def _popen_kwargs(self) -> dict[str, object]:
        return as_user(self.owner)

    def _command(self) -> list[str]:
        return [
            _pg_bin("postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-h",
            self.host,
            "-k",
            str(self.dir),
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
        ]

    def _ready(self) -> None:
        # The port opens before recovery ends; pg_isready says when connections are accepted.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            done = subprocess.run(
                [_pg_bin("pg_isready"), "-h", self.host, "-p", str(self.port), "-U", "postgres"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            if done.returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("PostgreSQL did not accept connections within 20 s")

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        subprocess.run(
            [
                _pg_bin("psql"),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                f'CREATE DATABASE "{name}"',
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        return self.url_for(name)


SERVER_TYPES: dict[str, Callable[[str], Server]] = {
    "postgres": PostgresServer,
    "redis": RedisServer,
    "nats": NatsServer,
}


@contextlib.contextmanager
def running(kind: str, host: str = LOOPBACK) -> Iterator[Server]:
    """Start one server of ``kind`` ("postgres", "redis", "nats") on ``host``; stop and delete it on exit."""
    server = SERVER_TYPES[kind](host)
    try:
        yield server.start()
    finally:
        server.cleanup()
