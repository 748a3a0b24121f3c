"""``python -m localdev``: every service of services/catalog.py on this machine, Ctrl-C stops it all.

Starts throwaway PostgreSQL, Redis and NATS (or uses ``TEST_DATABASE_URL``/``TEST_REDIS_URL``/
``TEST_NATS_URL`` when set), a database per service, a fresh Ed25519 dev key pair, then each service as
``python -m services <name>`` (the container command) with the environment its Settings class asks
for, waits until each is ready, prints the URLs, and on Ctrl-C/SIGTERM stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import asyncpg
import httpx

from localdev.servers import die_with_parent, free_port, running
from services.api_gateway.routes_table import ROUTES, upstream_setting
from services.catalog import SERVICES, ServiceEntry
from services.common.auth import generate_seed, public_pem_from_seed
from services.common.settings import (
    DatabaseSettings,
    JwtSettings,
    JwtSigningSettings,
    NatsSettings,
    RedisSettings,
    ServiceSettings,
)

ROOT = Path(__file__).resolve().parents[1]
# Settings a service needs beyond the shared ones, given a scratch directory. One line per service.
DEV_ENV: dict[str, Callable[[Path], dict[str, str]]] = {
    "file-management": lambda scratch: {"STORAGE_DIR": str(scratch / "files")},
}


def settings_class(entry: ServiceEntry) -> type[ServiceSettings]:
    cls: type[ServiceSettings] = importlib.import_module(f"services.{entry.package}.settings").Settings
    return cls


def service_env(
    entry: ServiceEntry, cls: type[ServiceSettings], urls: dict[str, str], ports: dict[str, int], seed: str,
    scratch: Path,
) -> dict[str, str]:  # fmt: skip
    """The environment of one service, derived from the mixins of its Settings class."""
    env = {
        "SERVICE_NAME": entry.name,
        "PORT": str(ports[entry.name]),
        "HOST": "127.0.0.1",
        "ENVIRONMENT": "local",
    }
    if issubclass(cls, DatabaseSettings):
        env["DATABASE_URL"] = urls[f"db:{entry.name}"]
    if issubclass(cls, RedisSettings):
        env["REDIS_URL"] = urls["redis"]
    if issubclass(cls, NatsSettings):
        env["NATS_SERVERS"] = urls["nats"]
    if issubclass(cls, JwtSettings):
        env["JWT_PUBLIC_KEY"] = public_pem_from_seed(seed)
    if issubclass(cls, JwtSigningSettings):
        env["JWT_SIGNING_SEED"] = seed
    for route in ROUTES:
        if upstream_setting(route.service) in cls.model_fields and route.service in ports:
            env[upstream_setting(route.service).upper()] = f"http://127.0.0.1:{ports[route.service]}"
    env.update(DEV_ENV.get(entry.name, lambda _: {})(scratch))
    return env


async def _create_databases(admin_url: str, names: list[str]) -> dict[str, str]:
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
def _data_stores(stack: ExitStack) -> Iterator[dict[str, str]]:
    urls = {}
    for kind, env in (
        ("postgres", "TEST_DATABASE_URL"),
        ("redis", "TEST_REDIS_URL"),
        ("nats", "TEST_NATS_URL"),
    ):
        urls[kind] = os.environ.get(env) or stack.enter_context(running(kind)).url
    yield urls


def _wait_ready(port: int, proc: subprocess.Popen[bytes], name: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode} during start-up")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{name} was not ready within {timeout:g} s")


def _stop(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run(names: list[str], free_ports: bool, stop_after: float | None = None) -> int:
    entries = [SERVICES[name] for name in names]
    ports = {e.name: free_port() if free_ports else e.dev_port for e in entries}
    seed = generate_seed()
    stop = False

    def request_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    with ExitStack() as stack, _data_stores(stack) as urls:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="venta-local-")))
        classes = {e.name: settings_class(e) for e in entries}
        with_db = [e for e in entries if issubclass(classes[e.name], DatabaseSettings)]
        databases = asyncio.run(_create_databases(urls["postgres"], [f"venta_{e.package}" for e in with_db]))
        urls.update({f"db:{e.name}": databases[f"venta_{e.package}"] for e in with_db})
        stack.callback(_stop, procs)
        # All at once (the gateway's readiness does not depend on its upstreams), then wait for each.
        for entry in entries:
            env = {**os.environ, **service_env(entry, classes[entry.name], urls, ports, seed, scratch)}
            procs[entry.name] = subprocess.Popen(
                [sys.executable, "-m", "services", entry.name], cwd=ROOT, env=env, preexec_fn=die_with_parent
            )
        for entry in entries:
            _wait_ready(ports[entry.name], procs[entry.name], entry.name)
        print("\nVenta is running locally (Ctrl-C stops everything):", flush=True)
        for entry in entries:
            print(f"  {entry.name:<20} http://127.0.0.1:{ports[entry.name]}", flush=True)
        for kind in ("postgres", "redis", "nats"):
            print(f"  {kind:<20} {urls[kind]}", flush=True)
        deadline = None if stop_after is None else time.monotonic() + stop_after
        while not stop and (deadline is None or time.monotonic() < deadline):
            for name, proc in procs.items():
                if proc.poll() is not None:
                    print(f"{name} exited with code {proc.returncode}; stopping", file=sys.stderr)
                    return 1
            time.sleep(0.3)
        print("stopping...", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localdev", description=__doc__.splitlines()[0])
    parser.add_argument("services", nargs="*", default=list(SERVICES), help="services to run (default: all)")
    parser.add_argument("--free-ports", action="store_true", help="pick free ports instead of 8080 and up")
    parser.add_argument("--stop-after", type=float, help="stop by itself after this many seconds")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.services) - set(SERVICES))
    if unknown:
        parser.error(f"unknown services {unknown}; known: {', '.join(SERVICES)}")
    try:
        return run(args.services, args.free_ports, args.stop_after)
    except RuntimeError as exc:
        print(f"localdev: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
