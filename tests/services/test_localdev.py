"""`python -m localdev`: every service up and healthy against the test's servers; Ctrl-C stops it all."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from localdev.servers import Server
from localdev.services import prepare_databases
from services.catalog import SERVICES

ROOT = Path(__file__).resolve().parents[2]
# The services of this area; the other services have their own tests.
MARKETPLACE = ("api-gateway", "user-management", "vendor-management", "search-discovery")


async def test_local_run_starts_all_services_healthy_and_stops_on_ctrl_c(
    servers: Any, postgres_admin_url: str
) -> None:
    env = {
        **os.environ,
        "TEST_DATABASE_URL": postgres_admin_url,
        "TEST_REDIS_URL": servers.redis_url,
        "TEST_NATS_URL": servers.nats_url,
        "LOG_LEVEL": "info",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "localdev",
        "--free-ports",
        *MARKETPLACE,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    urls: dict[str, str] = {}
    internal: dict[str, str] = {}
    try:
        async with asyncio.timeout(240):
            while len(urls) < len(MARKETPLACE):
                line = (await proc.stdout.readline()).decode()
                assert line, "localdev exited before printing its URLs"
                match = re.match(r"^\s+(\S+)\s+(http://\S+)\s+\(internal (http://\S+)\)$", line)
                if match:
                    urls[match.group(1)], internal[match.group(1)] = match.group(2), match.group(3)
        assert set(urls) == set(MARKETPLACE)
        async with httpx.AsyncClient(timeout=10) as client:
            for name, url in internal.items():
                assert (await client.get(f"{url}/health/ready")).status_code == 200, name
                assert (await client.get(f"{url}/openapi.json")).status_code == 200, name  # docs on locally
            view = (await client.get(f"{internal['api-gateway']}/health/upstreams")).json()
            ready = {name for name, upstream in view["upstreams"].items() if upstream["ready"]}
            assert ready == set(MARKETPLACE) - {"api-gateway"}
            for path in ("/health", "/health/upstreams", "/metrics", "/docs", "/openapi.json"):
                assert (await client.get(urls["api-gateway"] + path)).status_code == 404, path
            registered = await client.post(
                f"{urls['api-gateway']}/api/users/register",
                json={"email": "local@example.com", "password": "long enough"},
            )
            assert registered.status_code == 201
        # Ctrl-C: localdev sends SIGTERM to each `python -m services` it started (as Kubernetes would).
        proc.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0
        logs = [orjson.loads(line) for line in rest.splitlines() if line.startswith(b"{")]
        stopped = {entry["service"] for entry in logs if entry["msg"] == "stopping"}
        assert stopped == set(MARKETPLACE), "every service ran its lifespan shutdown"
        assert sum(entry["msg"] == "Application shutdown complete." for entry in logs) == len(MARKETPLACE)
        async with httpx.AsyncClient(timeout=2) as client:
            for url in [*urls.values(), *internal.values()]:
                try:
                    await client.get(f"{url}/health/live")
                except httpx.TransportError:
                    continue
                raise AssertionError(f"{url} still answers after Ctrl-C")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.parametrize("shared", [False, True])
async def test_the_local_run_makes_each_role_and_database_with_the_stacks_init_script(
    private_server: Callable[[str], Server], shared: bool
) -> None:
    """Each service logs in as its own role, to its own database, refused the others' (what the
    stacks' init script makes, tests/datastores); on a shared server the names carry the run's suffix."""
    server = private_server("postgres")
    entries = [entry for entry in SERVICES.values() if entry.database]
    urls = prepare_databases(server.url, entries, shared_server=shared)
    assert set(urls) == {f"db:{entry.name}" for entry in entries}
    databases = []
    for entry in entries:
        url = urls[f"db:{entry.name}"]
        conn = await asyncpg.connect(url)
        try:
            user, database = (await conn.fetchrow("SELECT current_user, current_database()")).values()
        finally:
            await conn.close()
        assert user == database and (database == entry.database_name) is not shared
        assert database.startswith(entry.database_name)
        databases.append(database)
    first = urls[f"db:{entries[0].name}"]
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await asyncpg.connect(first.rsplit("/", 1)[0] + f"/{databases[1]}")
