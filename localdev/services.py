"""Start services as subprocesses with the environment their Settings classes ask for.

Shared by ``python -m localdev`` and the benchmarks: each service runs as ``python -m services <name>``,
the container command, so what runs locally is what runs in the image.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx

from infra.builders.datastore_config import postgres_init_sql
from localdev.servers import NatsServer, _pg_bin, die_with_parent, free_port, running
from services.api_gateway.routes_table import upstream_internal_setting
from services.catalog import SERVICES, Service
from services.common.auth import public_pem_from_seed
from services.common.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
CLOSED_PORT = 9  # "discard": nothing listens there on a dev machine
# What a local run sets differently from a cluster, for any service whose catalog entry reads it:
# local webhook receivers listen on loopback, which the SSRF guard refuses by default.
LOCAL_ENV = {"WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"}


@dataclass(frozen=True)
class Ports:
    public: int  # PORT: the API (only the gateway's is for clients)
    internal: int  # INTERNAL_PORT: probes, metrics, docs


def pick_ports(entries: list[Service], free_ports: bool) -> dict[str, Ports]:
    """The catalog's dev ports (8080 and up, 9080 and up), or free ones."""
    if free_ports:
        return {e.name: Ports(free_port(), free_port()) for e in entries}
    return {e.name: Ports(e.dev_port, e.dev_internal_port) for e in entries}


def settings_class(entry: Service) -> type[ServiceSettings]:
    cls: type[ServiceSettings] = importlib.import_module(f"services.{entry.package}.settings").Settings
    return cls


def service_env(
    entry: Service, urls: dict[str, str], ports: dict[str, Ports], seed: str, scratch: Path
) -> dict[str, str]:
    """The environment of one service on this machine, derived from its catalog entry."""
    env = {
        "SERVICE_NAME": entry.name,
        "PORT": str(ports[entry.name].public),
        "INTERNAL_PORT": str(ports[entry.name].internal),
        "HOST": "127.0.0.1",
        "ENVIRONMENT": "local",
        "API_DOCS": "true",
        "JWT_PUBLIC_KEY": public_pem_from_seed(seed),
        # No balancer in front of a local run: nothing to drain for, Ctrl-C stops at once.
        "SHUTDOWN_DRAIN_SECONDS": "0",
    }
    if entry.database:
        env["DATABASE_URL"] = urls[f"db:{entry.name}"]
    if entry.redis or entry.cache:
        # One local Redis serves a cache too (its settings fall back from CACHE_REDIS_URL to REDIS_URL).
        env["REDIS_URL"] = urls["redis"]
    if entry.nats:
        env["NATS_SERVERS"] = urls["nats"]
        if f"nats:{entry.name}" in urls:  # the local NATS holds each service to its subjects
            env |= {"NATS_USER": entry.name, "NATS_PASSWORD": urls[f"nats:{entry.name}"]}
    if entry.signs_tokens:
        env["JWT_SIGNING_SEED"] = seed
    if entry.public_entry:
        for upstream in SERVICES.values():
            if not upstream.public_entry:
                # A service left out of this run gets a closed port: its routes answer 502, the rest work.
                port = ports.get(upstream.name, Ports(CLOSED_PORT, CLOSED_PORT))
                env[f"UPSTREAM_{upstream.env_suffix}"] = f"http://127.0.0.1:{port.public}"
                # Each local service has its own internal port (in a cluster they all share one).
                env[upstream_internal_setting(upstream.name).upper()] = f"http://127.0.0.1:{port.internal}"
    if entry.file_storage:
        env["STORAGE_DIR"] = str(scratch / "files")
    env.update({key: LOCAL_ENV.get(key, default) for key, default in entry.env})
    return env


async def create_databases(admin_url: str, names: list[str]) -> dict[str, str]:
    """Empty databases owned by the admin (tests that need no roles of their own)."""
    conn = await asyncpg.connect(admin_url)
    try:
        existing = {r["datname"] for r in await conn.fetch("SELECT datname FROM pg_database")}
        for name in names:
            if name not in existing:
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = admin_url.rsplit("/", 1)[0]
    return {name: f"{base}/{name}" for name in names}


@contextlib.contextmanager
def data_stores(stack: ExitStack) -> Iterator[dict[str, str]]:
    """The stores' URLs (and `nats:<service>`: each service's NATS password when this run starts
    NATS itself; a server named by TEST_NATS_URL is used as it is)."""
    urls = {}
    for kind, env in (("postgres", "TEST_DATABASE_URL"), ("redis", "TEST_REDIS_URL")):
        urls[kind] = os.environ.get(env) or stack.enter_context(running(kind)).url
    urls["nats"] = os.environ.get("TEST_NATS_URL", "")
    if not urls["nats"]:
        passwords = {e.name: secrets.token_urlsafe(24) for e in SERVICES.values() if e.nats}
        server = stack.enter_context(permissioned_nats(passwords))
        urls |= {"nats": server.url, **{f"nats:{name}": pw for name, pw in passwords.items()}}
    yield urls


@contextlib.contextmanager
def permissioned_nats(passwords: dict[str, str]) -> Iterator[NatsServer]:
    """NATS with a user per service and the subject permissions a cluster gives it."""
    # The same rules as the stacks' nats.conf; imported here only, as it brings Pulumi along.
    from infra.builders.nats_permissions import users_block

    server = NatsServer(config=users_block(passwords, SERVICES.values()) + "\n")
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


def wait_ready(port: int, proc: subprocess.Popen[bytes], name: str, timeout: float = 180) -> None:
    """Until ``/health/ready`` on the internal ``port`` answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode} during start-up")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{name} was not ready within {timeout:g} s")


def stop_all(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_service(entry: Service, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services", entry.name],
        cwd=ROOT,
        env={**os.environ, **env},
        preexec_fn=die_with_parent,
    )


def prepare_databases(admin_url: str, entries: list[Service], shared_server: bool = False) -> dict[str, str]:
    """A role, password and database per service that has one in the catalog, made by the init
    script the stacks render (``postgres_init_sql``, run by psql statement by statement as the
    postgres image runs it): ``{"db:<service>": url}``, each URL logging in as the service's own role.
    On a ``shared_server`` (TEST_DATABASE_URL) the names get a suffix of this run, so runs never meet."""
    with_db = [e for e in entries if e.database]
    suffix = f"_{secrets.token_hex(3)}" if shared_server else ""
    names = {e.name: e.database_name + suffix for e in with_db}
    passwords = {names[e.name]: secrets.token_urlsafe(24) for e in with_db}
    if passwords:
        done = subprocess.run(
            [_pg_bin("psql"), admin_url, "-q", "-v", "ON_ERROR_STOP=1", "--no-psqlrc"],
            input=postgres_init_sql(passwords),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the init script failed on {urlsplit(admin_url).hostname}: {done.stderr}")
    where = urlsplit(admin_url)
    address = f"{where.hostname}:{where.port or 5432}"
    return {
        f"db:{e.name}": f"postgresql://{names[e.name]}:{passwords[names[e.name]]}@{address}/{names[e.name]}"
        for e in with_db
    }
