"""vendor-management's lag-tolerant reads (vendor get and list) against a real streaming standby: the
standby serves them, the primary takes over when the standby is away or further behind than the
tolerance, and without DATABASE_READ_URL nothing changes (every other service test)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from localdev.servers import PostgresServer, Server
from services.vendor_management.app import create_app
from services.vendor_management.routes.vendors import READ_LAG_SECONDS
from services.vendor_management.settings import Settings
from tests.datastores.servers import StandbyPostgres
from tests.services.marketplace import Servers, bearer, eventually


@dataclass
class Replicated:
    primary: PostgresServer
    standby: StandbyPostgres
    http: httpx.AsyncClient
    headers: dict[str, str]

    async def create(self, name: str) -> str:
        body = {"name": name, "category": "food"}
        response = await self.http.post("/vendors", json=body, headers=self.headers)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def status(self, vendor_id: str) -> int:
        return (await self.http.get(f"/vendors/{vendor_id}")).status_code


def reads(server: str) -> float:
    return REGISTRY.get_sample_value("db_reads_total", {"server": server}) or 0.0


@pytest.fixture
def standby_of(
    private_server: Callable[[str], Server],
) -> Iterator[Callable[[PostgresServer], StandbyPostgres]]:
    made: list[StandbyPostgres] = []

    def clone(primary: PostgresServer) -> StandbyPostgres:
        # The clone the replica pod runs (tests/datastores run the stack's own), from a trusting primary.
        command = (
            f'pg_basebackup -h {primary.host} -p {primary.port} -U postgres -D "$PGDATA" -R -X stream -c fast'
        )
        standby = StandbyPostgres(primary.host, command, {})
        made.append(standby)
        standby.start()
        return standby

    yield clone
    for standby in made:
        standby.cleanup()


@pytest.fixture
async def replicated(
    private_server: Callable[[str], Server],
    standby_of: Callable[[PostgresServer], StandbyPostgres],
    servers: Servers,
    serve: Any,
) -> AsyncIterator[Replicated]:
    primary = private_server("postgres")
    assert isinstance(primary, PostgresServer)
    url = primary.create_database("vendors")
    standby = standby_of(primary)
    settings = Settings(
        service_name="vendor-management",
        database_url=url,
        database_read_url=standby.url_for("vendors"),
        nats_servers=[servers.nats_url],
        jwt_public_key=servers.public_pem,
        outbox_poll_seconds=0.2,
        db_read_retry_seconds=1.0,
    )
    base = await serve(create_app(settings))
    token = servers.issuer().issue(str(uuid.uuid4()), "vendor")
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        yield Replicated(primary, standby, client, bearer(token))


async def test_the_standby_serves_vendor_reads_even_with_the_primary_stopped(replicated: Replicated) -> None:
    first = await replicated.create("Replicated")
    await eventually(lambda: _is(replicated.status(first), 200), within=5, what="the vendor is read")
    # A last write, replayed by the standby; then the primary goes: only the standby can answer now.
    second = await replicated.create("Just before")
    standby = await asyncpg.connect(replicated.standby.url_for("vendors"))
    try:
        query = "SELECT count(*) = 1 FROM vendors WHERE id = $1"
        await eventually(lambda: _fetchval(standby, query, uuid.UUID(second)), within=5, what="replayed")
    finally:
        await standby.close()
    served_before = reads("replica")
    replicated.primary.stop()
    began = time.monotonic()
    # At most one lag check (LAG_CHECK_SECONDS) made before the stop still sends reads to the primary.
    await eventually(lambda: _is(replicated.status(second), 200), within=1.5, what="the standby serves")
    assert await replicated.status(first) == 200
    listed = (await replicated.http.get("/vendors")).json()
    assert {v["id"] for v in listed["items"]} == {first, second}
    assert reads("replica") >= served_before + 3
    # Past the tolerance since the last change it replayed, the standby is no longer believed.
    await asyncio.sleep(max(0.0, READ_LAG_SECONDS + 1.2 - (time.monotonic() - began)))
    assert await replicated.status(first) == 503


async def test_the_primary_serves_when_the_standby_is_away(replicated: Replicated) -> None:
    vendor = await replicated.create("Fallback")
    replicated.standby.stop()
    from_primary = reads("primary")
    began = time.monotonic()
    assert await replicated.status(vendor) == 200
    assert (await replicated.http.get("/vendors")).json()["total"] == 1
    assert time.monotonic() - began < 3, "one failed attempt, then the primary at once"
    assert reads("primary") >= from_primary + 2


async def test_a_standby_behind_more_than_the_tolerance_is_not_read(replicated: Replicated) -> None:
    conn = await asyncpg.connect(replicated.standby.url_for("vendors"))
    try:
        # The service's migrations reached the standby; from here on it replays nothing.
        await eventually(lambda: _fetchval(conn, "SELECT to_regclass('vendors') IS NOT NULL"), within=5)
        await conn.execute("SELECT pg_wal_replay_pause()")
        # Its last replayed change grows older than the tolerance; then a change it cannot replay.
        await asyncio.sleep(READ_LAG_SECONDS + 1.2)
        vendor = await replicated.create("Behind")
        assert await replicated.status(vendor) == 200, "read from the primary, not the paused standby"
        assert not await conn.fetchval("SELECT count(*) FROM vendors WHERE id = $1", uuid.UUID(vendor))
        await conn.execute("SELECT pg_wal_replay_resume()")
        await eventually(
            lambda: _fetchval(conn, "SELECT count(*) = 1 FROM vendors WHERE id = $1", uuid.UUID(vendor)),
            within=5,
            what="the standby catches up",
        )
    finally:
        await conn.close()


async def _is(status: Any, expected: int) -> bool:
    return bool(await status == expected)


async def _fetchval(conn: asyncpg.Connection, query: str, *args: Any) -> bool:
    return bool(await conn.fetchval(query, *args))
