"""vendor-management against real PostgreSQL and NATS: owner-only changes, pagination, the outbox."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import nats.js.errors
import orjson
import pytest
from nats.js.api import ConsumerConfig, DeliverPolicy

from services.common.migrations import apply_migrations
from services.common.nats_client import (
    VENDOR_STATE_STREAM,
    ensure_streams,
    new_event,
    vendor_state_subject,
)
from services.vendor_management import repository
from services.vendor_management.app import create_app
from services.vendor_management.outbox import OutboxRelay, record_event
from services.vendor_management.settings import Settings
from tests.services.marketplace import Servers, bearer, eventually

MIGRATIONS = Path(repository.__file__).parent / "migrations"


@dataclass
class Vendors:
    http: httpx.AsyncClient
    settings: Settings
    servers: Servers

    def as_user(self, role: str = "vendor", user_id: str | None = None) -> tuple[str, dict[str, str]]:
        user_id = user_id or str(uuid.uuid4())
        return user_id, bearer(self.servers.issuer().issue(user_id, role))  # type: ignore[arg-type]

    async def create(self, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
        body = {"name": "Stall", "category": "food", **fields}
        response = await self.http.post("/vendors", json=body, headers=headers)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture
async def vendors(servers: Servers, serve: Any) -> AsyncIterator[Vendors]:
    settings = await servers.vendor_settings(outbox_poll_seconds=0.2)
    url = await serve(create_app(settings))
    async with httpx.AsyncClient(base_url=url) as client:
        yield Vendors(client, settings, servers)


async def stream_events(nats_url: str, count: int, within: float = 10.0) -> list[tuple[dict[str, Any], str]]:
    """The first ``count`` events of the VENDORS stream with their Nats-Msg-Id headers."""
    nc = await nats.connect(nats_url)
    try:
        sub = await nc.jetstream().pull_subscribe(
            "vendor.>", stream="VENDORS", config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        )
        got: list[tuple[dict[str, Any], str]] = []

        async def fetched() -> bool:
            try:
                for msg in await sub.fetch(count - len(got), timeout=0.5):
                    got.append((orjson.loads(msg.data), (msg.headers or {}).get("Nats-Msg-Id", "")))
                    await msg.ack()
            except nats.errors.TimeoutError:
                pass
            return len(got) >= count

        await eventually(fetched, within, f"{count} vendor events")
        return got
    finally:
        await nc.close()


async def test_owner_lifecycle_publishes_every_change(vendors: Vendors, nats_url: str) -> None:
    owner, headers = vendors.as_user()
    vendor = await vendors.create(headers, name="Pasta Place", category="food", description="fresh pasta")
    assert vendor["owner_id"] == owner and vendor["version"] == 1 and vendor["active"] is True

    changed = await vendors.http.patch(f"/vendors/{vendor['id']}", json={"active": False}, headers=headers)
    assert changed.status_code == 200 and changed.json()["active"] is False and changed.json()["version"] == 2
    assert (await vendors.http.delete(f"/vendors/{vendor['id']}", headers=headers)).status_code == 204
    assert (await vendors.http.get(f"/vendors/{vendor['id']}")).status_code == 404

    events = await stream_events(nats_url, 3)
    assert [e["type"] for e, _ in events] == ["vendor.created", "vendor.updated", "vendor.deleted"]
    assert [e["data"]["version"] for e, _ in events] == [1, 2, 3]
    assert all(msg_id == e["id"] for e, msg_id in events)
    assert len({e["id"] for e, _ in events}) == 3
    assert events[0][0]["data"]["name"] == "Pasta Place" and events[0][0]["data"]["owner_id"] == owner


async def test_only_the_owner_changes_or_removes(vendors: Vendors) -> None:
    _, owner = vendors.as_user()
    _, intruder = vendors.as_user()
    vendor = await vendors.create(owner)
    patch = await vendors.http.patch(f"/vendors/{vendor['id']}", json={"name": "Mine now"}, headers=intruder)
    assert patch.status_code == 403 and "owner" in patch.json()["detail"]
    assert (await vendors.http.delete(f"/vendors/{vendor['id']}", headers=intruder)).status_code == 403
    assert (await vendors.http.get(f"/vendors/{vendor['id']}")).json()["name"] == "Stall"
    _, customer = vendors.as_user("customer")
    refused = await vendors.http.post("/vendors", json={"name": "x", "category": "food"}, headers=customer)
    assert refused.status_code == 403 and "vendor role" in refused.json()["detail"]
    assert (await vendors.http.post("/vendors", json={"name": "x", "category": "food"})).status_code == 401
    missing = f"/vendors/{uuid.uuid4()}"
    assert (await vendors.http.patch(missing, json={"name": "x"}, headers=owner)).status_code == 404
    assert (await vendors.http.delete(missing, headers=owner)).status_code == 404


async def test_listing_paginates_and_filters(vendors: Vendors) -> None:
    owner_id, headers = vendors.as_user()
    for i in range(5):
        await vendors.create(headers, name=f"V{i}", category="food" if i % 2 == 0 else "books")
    page = (await vendors.http.get("/vendors", params={"limit": 2, "offset": 0})).json()
    assert page["total"] == 5 and [v["name"] for v in page["items"]] == ["V0", "V1"]
    last = (await vendors.http.get("/vendors", params={"limit": 2, "offset": 4})).json()
    assert [v["name"] for v in last["items"]] == ["V4"]
    food = (await vendors.http.get("/vendors", params={"category": "food"})).json()
    assert food["total"] == 3 and {v["category"] for v in food["items"]} == {"food"}
    mine = (await vendors.http.get("/vendors", params={"owner_id": owner_id})).json()
    assert mine["total"] == 5


@pytest.mark.parametrize(
    ("method", "path", "body", "reason"),
    [
        ("POST", "/vendors", {"name": "", "category": "food"}, "name"),
        ("POST", "/vendors", {"name": "x", "category": "Not A Slug"}, "category"),
        ("POST", "/vendors", {"name": "x", "category": "food", "owner_id": "someone"}, "owner_id"),
        ("PATCH", "/vendors/{id}", {}, "at least one"),
        ("PATCH", "/vendors/{id}", {"active": "sometimes"}, "active"),
        ("GET", "/vendors/not-a-uuid", None, "vendor_id"),
        ("GET", "/vendors?limit=0", None, "limit"),
        ("GET", "/vendors?limit=1000", None, "limit"),
    ],
)
async def test_bad_input_is_422_with_a_reason(
    vendors: Vendors, method: str, path: str, body: dict[str, Any] | None, reason: str
) -> None:
    _, headers = vendors.as_user()
    vendor = await vendors.create(headers)
    response = await vendors.http.request(method, path.format(id=vendor["id"]), json=body, headers=headers)
    assert response.status_code == 422
    assert reason in response.json()["detail"]


async def test_an_event_committed_before_a_crash_is_published_on_restart(
    servers: Servers, serve: Any, serve_service: Any, nats_url: str
) -> None:
    settings = await servers.vendor_settings(outbox_poll_seconds=0.2)
    # First run: apply the schema only.
    await serve(create_app(settings.model_copy(update={"outbox_poll_seconds": 60})))
    # The "crash": a change committed with its outbox row, and no relay alive to publish it.
    pool = await asyncpg.create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=1)
    try:
        owner = uuid.uuid4()
        row = await repository.create_vendor(
            pool, owner, {"name": "Orphan", "category": "food", "description": "", "active": True}
        )
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 1
        # A replica starting later publishes it.
        _, internal_url = await serve_service(create_app(settings))
        events = await stream_events(nats_url, 1)
        assert events[0][0]["data"]["id"] == str(row["id"])

        async def marked() -> bool:
            return await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0

        await eventually(marked, what="outbox row marked published")
        async with httpx.AsyncClient(base_url=internal_url) as client:
            health = (await client.get("/health")).json()
        assert health["details"]["outbox"] == {"pending": 0, "oldest_seconds": 0.0}
    finally:
        await pool.close()


async def test_a_failed_publish_keeps_the_marks_of_the_rows_published_before_it(
    servers: Servers, serve: Any, nats_url: str
) -> None:
    settings = await servers.vendor_settings(outbox_poll_seconds=60)
    await serve(create_app(settings))  # the schema and the stream; its relay sleeps between polls
    pool = await asyncpg.create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    nc = await nats.connect(nats_url)
    try:
        async with pool.acquire() as conn, conn.transaction():
            first = await record_event(conn, "vendor.created", {"id": "a", "version": 1})
            # No stream takes this subject: JetStream refuses it, as it would while NATS is away.
            await record_event(conn, "vendor.misrouted", {"id": "b", "version": 1})
            await record_event(conn, "vendor.created", {"id": "c", "version": 1})
        relay = OutboxRelay(pool, nc.jetstream(), poll_seconds=60, batch_size=10)
        with pytest.raises(nats.js.errors.NoStreamResponseError):
            await relay.publish_pending()
        pending = await pool.fetch("SELECT id, subject FROM outbox WHERE published_at IS NULL ORDER BY seq")
        # The first row reached JetStream and stays marked: it is not sent again on the next pass.
        assert [r["subject"] for r in pending] == ["vendor.misrouted", "vendor.created"]
        assert str(pending[0]["id"]) != first
        assert (await nc.jetstream().stream_info("VENDORS")).state.messages == 1

        await pool.execute("UPDATE outbox SET subject = 'vendor.updated' WHERE subject = 'vendor.misrouted'")
        assert await relay.publish_pending() == 2
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
        assert (await nc.jetstream().stream_info("VENDORS")).state.messages == 3
    finally:
        await nc.close()
        await pool.close()


async def test_vendors_from_before_the_state_stream_are_backfilled_once_never_over_a_newer_state(
    servers: Servers, serve: Any, nats_url: str, tmp_path: Path
) -> None:
    settings = await servers.vendor_settings()
    # The database as the release before VENDOR_STATE left it: the first migration, three vendors.
    old = tmp_path / "migrations"
    old.mkdir()
    shutil.copy(MIGRATIONS / "0001_vendors.sql", old)
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    vendors = [uuid.uuid4() for _ in range(3)]
    try:
        await apply_migrations(conn, "vendor-management", old)
        for vendor in vendors:
            await conn.execute(
                "INSERT INTO vendors (id, owner_id, name, category, version) VALUES ($1, $2, $3, 'food', 4)",
                vendor,
                uuid.uuid4(),
                "Old",
            )
    finally:
        await conn.close()
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    try:
        await ensure_streams(js, VENDOR_STATE_STREAM)
        # The relay of a replica already on the new release published a newer change of one vendor.
        newer = new_event("vendor.updated", {"id": str(vendors[0]), "version": 5, "name": "Renamed"})
        await js.publish(vendor_state_subject(str(vendors[0])), orjson.dumps(newer))
        await serve(create_app(settings))

        async def backfilled() -> bool:
            return (await js.stream_info(VENDOR_STATE_STREAM.name)).state.messages == 3

        await eventually(backfilled, what="every vendor in VENDOR_STATE")
        latest = {}
        for vendor in vendors:
            msg = await js.get_last_msg(VENDOR_STATE_STREAM.name, vendor_state_subject(str(vendor)))
            assert msg.data is not None
            latest[vendor] = orjson.loads(msg.data)["data"]
        assert latest[vendors[0]]["version"] == 5 and latest[vendors[0]]["name"] == "Renamed"
        assert [latest[v]["version"] for v in vendors[1:]] == [4, 4]
        assert latest[vendors[1]]["owner_id"] and latest[vendors[1]]["active"] is True

        # Once per database: a replica starting later publishes nothing again.
        last = (await js.stream_info(VENDOR_STATE_STREAM.name)).state.last_seq
        await serve(create_app(settings))
        await asyncio.sleep(0.5)
        assert (await js.stream_info(VENDOR_STATE_STREAM.name)).state.last_seq == last
    finally:
        await nc.close()


async def test_published_outbox_rows_go_after_the_retention_period_pending_ones_never(
    servers: Servers, serve: Any, nats_url: str
) -> None:
    settings = await servers.vendor_settings(
        outbox_poll_seconds=0.2, outbox_retention_days=7.0, outbox_retention_interval_seconds=0.1
    )
    url = await serve(create_app(settings))
    pool = await asyncpg.create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=1)
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            made = Vendors(client, settings, servers)
            _, headers = made.as_user()
            ids = [(await made.create(headers, name=f"Stall {i}"))["id"] for i in range(4)]

        async def all_published() -> bool:
            return await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL") == 4

        await eventually(all_published, what="the four events published")
        # Two published eight days ago, and one pending as long: its subject has no stream, so the
        # relay fails to publish it on every pass (as during an outage) and it stays pending.
        old = [str(v) for v in ids[:2]]
        await pool.execute(
            "UPDATE outbox SET created_at = now() - interval '8 days',"
            " published_at = now() - interval '8 days'"
            " WHERE convert_from(payload, 'UTF8')::jsonb -> 'data' ->> 'id' = ANY ($1)",
            old,
        )
        await pool.execute(
            "INSERT INTO outbox (id, subject, payload, created_at)"
            " VALUES ($1, 'nowhere.withheld', $2, now() - interval '8 days')",
            uuid.uuid4(),
            b'{"data": {}}',
        )

        async def purged() -> bool:
            return await pool.fetchval("SELECT count(*) FROM outbox") == 3

        await eventually(purged, what="the two old published rows deleted")
        left = await pool.fetch(
            "SELECT convert_from(payload, 'UTF8')::jsonb -> 'data' ->> 'id' AS vendor, published_at"
            " FROM outbox"
        )
        assert {row["vendor"] for row in left} == {*map(str, ids[2:]), None}
        assert [row["published_at"] for row in left if row["vendor"] is None] == [None]
    finally:
        await pool.close()
