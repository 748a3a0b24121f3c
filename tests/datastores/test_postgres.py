"""PostgreSQL as each stack renders it, on real servers (Debian's PostgreSQL 15; the image runs 16):
the init files the primary pod mounts, the roles and databases they make, and prod's replica made by
its clone command. Substitutions: tests/datastores/servers.py (``PodPostgres``) and postgres.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import asyncpg
import pytest

from services.catalog import SERVICES
from tests.datastores.conftest import STACKS
from tests.datastores.postgres import replica_of, service_url, start_primary
from tests.datastores.rendered import Manifest
from tests.datastores.servers import PodPostgres


async def eventually(conn: asyncpg.Connection, query: str, expected: object, within: float) -> None:
    began = time.monotonic()
    while (found := await conn.fetchval(query)) != expected:
        assert time.monotonic() - began < within, f"{query}: {found!r} after {within} s"
        await asyncio.sleep(0.01)


WITH_DATABASE = [name for name, entry in SERVICES.items() if entry.database]


@pytest.fixture(scope="module", params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def primary(stack: str, objects_of: Callable[[str], list[Manifest]]) -> Iterator[PodPostgres]:
    server = start_primary(objects_of(stack))
    try:
        yield server
    finally:
        server.cleanup()


@pytest.mark.parametrize("service", WITH_DATABASE)
async def test_each_services_role_reaches_its_own_database_and_is_refused_the_others(
    stack: str, primary: PodPostgres, objects_of: Callable[[str], list[Manifest]], service: str
) -> None:
    objects = objects_of(stack)
    url = service_url(objects, service, primary)
    own = SERVICES[service].database_name
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT current_user || '/' || current_database()") == f"{own}/{own}"
        # It owns its database: its migrations can create what they need.
        await conn.execute("CREATE TABLE IF NOT EXISTS datapath_probe (id int)")
        assert (
            await conn.fetchval(
                "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
            )
            is False
        )
    finally:
        await conn.close()
    for other in (SERVICES[s].database_name for s in WITH_DATABASE if s != service):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied for database"):
            await asyncpg.connect(url.rsplit("/", 1)[0] + f"/{other}")
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(url.replace(f"{own}:", f"{own}:x", 1))


@pytest.mark.parametrize("stack", ["prod"], indirect=True)  # dev runs no read replica
async def test_the_replica_clone_follows_the_primary_within_a_second(
    stack: str, primary: PodPostgres, objects_of: Callable[[str], list[Manifest]]
) -> None:
    objects = objects_of(stack)
    service = "vendor-management"
    with replica_of(objects, primary) as standby:
        writer = await asyncpg.connect(service_url(objects, service, primary))
        # The read URL the service's Secret holds: its role and password arrive with the clone.
        reader = await asyncpg.connect(service_url(objects, service, standby, "DATABASE_READ_URL"))
        try:
            assert await reader.fetchval("SELECT pg_is_in_recovery()") is True
            await writer.execute("CREATE TABLE IF NOT EXISTS followed (note text)")
            await eventually(reader, "SELECT to_regclass('followed') IS NOT NULL", True, within=5.0)
            await writer.execute("INSERT INTO followed VALUES ('written on the primary')")
            await eventually(reader, "SELECT max(note) FROM followed", "written on the primary", within=1.0)
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await reader.execute("INSERT INTO followed VALUES ('refused')")
        finally:
            await writer.close()
            await reader.close()
