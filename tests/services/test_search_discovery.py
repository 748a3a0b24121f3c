"""search-discovery on real PostgreSQL, Redis and NATS: events in, ranked search out, cache invalidation."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import nats
import orjson
import pytest
from nats.js import JetStreamContext
from pydantic import SecretStr

from services.common.metrics import sample_value
from services.common.nats_client import VENDORS_STREAM, ensure_streams, new_event
from services.search_discovery.app import create_app as create_search
from services.vendor_management.app import create_app as create_vendors
from tests.services.marketplace import Servers, bearer, eventually


@dataclass
class Search:
    http: httpx.AsyncClient
    js: JetStreamContext

    async def find(self, **params: Any) -> httpx.Response:
        return await self.http.get("/search/vendors", params=params)

    async def names(self, **params: Any) -> list[str]:
        response = await self.find(**params)
        assert response.status_code == 200, response.text
        return [hit["name"] for hit in response.json()["items"]]

    async def publish(self, event: dict[str, Any], msg_id: str | None = None) -> None:
        # msg_id differs from the event id to get past JetStream's own de-duplication (a true replay).
        await self.js.publish(
            event["type"], orjson.dumps(event), headers={"Nats-Msg-Id": msg_id or event["id"]}
        )


@pytest.fixture
async def search(servers: Servers, serve: Any) -> AsyncIterator[Search]:
    url = await serve(create_search(await servers.search_settings()))
    nc = await nats.connect(servers.nats_url)
    js = nc.jetstream()
    await ensure_streams(js, VENDORS_STREAM)
    async with httpx.AsyncClient(base_url=url) as client:
        yield Search(client, js)
    await nc.close()


def vendor_event(kind: str, vendor_id: str, version: int, **data: Any) -> dict[str, Any]:
    body = {
        "id": vendor_id,
        "version": version,
        "name": "Stall",
        "category": "food",
        "description": "",
        "active": True,
        "owner_id": str(uuid.uuid4()),
        **data,
    }
    return new_event(f"vendor.{kind}", body)


async def test_vendor_event_reaches_search_and_invalidates_the_cache(
    servers: Servers, serve: Any, search: Search
) -> None:
    vendors_url = await serve(create_vendors(await servers.vendor_settings(outbox_poll_seconds=0.2)))
    token = servers.issuer().issue(str(uuid.uuid4()), "vendor")
    async with httpx.AsyncClient(base_url=vendors_url, headers=bearer(token)) as vendors:
        created = await vendors.post(
            "/vendors",
            json={"name": "Luigi's Pizza", "category": "food", "description": "wood-fired pizza and pasta"},
        )
        assert created.status_code == 201

        async def indexed() -> bool:
            return await search.names(q="pizza") == ["Luigi's Pizza"]

        await eventually(indexed, what="vendor.created reaching search")
        # The answer is cached now (the first lookup may race the invalidation and miss once more).
        await search.find(q="pizza")
        assert (await search.find(q="pizza")).headers["x-cache"] == "hit"

        renamed = await vendors.patch(f"/vendors/{created.json()['id']}", json={"name": "Luigi's Trattoria"})
        assert renamed.status_code == 200

        async def refreshed() -> bool:
            return await search.names(q="pizza") == ["Luigi's Trattoria"]

        await eventually(refreshed, what="vendor.updated invalidating the cached search")
        assert (await vendors.delete(f"/vendors/{created.json()['id']}")).status_code == 204

        async def removed() -> bool:
            return await search.names(q="pizza") == []

        await eventually(removed, what="vendor.deleted removing the vendor from search")


async def test_ranking_category_and_pagination(search: Search) -> None:
    events = [
        vendor_event("created", str(uuid.uuid4()), 1, name="Green Bakery", description="bread and cakes"),
        vendor_event(
            "created", str(uuid.uuid4()), 1, name="Corner Shop", description="bread, milk, green tea"
        ),
        vendor_event(
            "created", str(uuid.uuid4()), 1, name="Book Nook", category="books", description="green novels"
        ),
        vendor_event("created", str(uuid.uuid4()), 1, name="Closed Green", active=False),
    ]
    for event in events:
        await search.publish(event)

    async def all_in() -> bool:
        return len(await search.names()) == 3

    await eventually(all_in, what="events applied")
    # A name match outweighs a description match; inactive vendors never show.
    assert await search.names(q="green") == ["Green Bakery", "Book Nook", "Corner Shop"]
    assert await search.names(q="green", category="food") == ["Green Bakery", "Corner Shop"]
    assert await search.names(q="bread -cakes") == ["Corner Shop"]
    page = (await search.find(q="green", limit=1, offset=1)).json()
    assert page["total"] == 3 and [h["name"] for h in page["items"]] == ["Book Nook"]
    assert page["items"][0]["rank"] > 0


async def test_replayed_and_stale_events_change_nothing(search: Search) -> None:
    vendor_id = str(uuid.uuid4())
    created = vendor_event("created", vendor_id, 1, name="Twice Told")
    updated = vendor_event("updated", vendor_id, 2, name="Told Thrice")
    for event in (created, updated):
        await search.publish(event)

    async def current() -> bool:
        return await search.names(q="told") == ["Told Thrice"]

    await eventually(current, what="update applied")
    applied = sample_value("search_vendor_events_total", {"outcome": "applied"})
    ignored = sample_value("search_vendor_events_total", {"outcome": "ignored"})
    # The same events again (a redelivery), plus the old "created" once more: nothing changes.
    await search.publish(updated, msg_id=str(uuid.uuid4()))
    await search.publish(created, msg_id=str(uuid.uuid4()))

    async def both_seen() -> bool:
        return sample_value("search_vendor_events_total", {"outcome": "ignored"}) - ignored == 2

    await eventually(both_seen, what="replays consumed")
    assert sample_value("search_vendor_events_total", {"outcome": "applied"}) == applied
    response = await search.find(q="told")
    assert [h["name"] for h in response.json()["items"]] == ["Told Thrice"] and response.json()["total"] == 1


async def test_a_malformed_event_does_not_block_the_stream(search: Search) -> None:
    rejected = sample_value("search_vendor_events_total", {"outcome": "rejected"})
    await search.js.publish("vendor.created", b"{not json", headers={"Nats-Msg-Id": str(uuid.uuid4())})
    await search.js.publish("vendor.updated", orjson.dumps(new_event("vendor.updated", {"name": "no id"})))
    await search.publish(vendor_event("created", str(uuid.uuid4()), 1, name="After The Junk"))

    async def applied() -> bool:
        return await search.names(q="junk") == ["After The Junk"]

    await eventually(applied, what="good event after malformed ones")
    assert sample_value("search_vendor_events_total", {"outcome": "rejected"}) - rejected == 2


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"category": "Bad Slug"}, "category"),
        ({"q": "x" * 201}, "q"),
        ({"offset": -1}, "offset"),
    ],
)
async def test_bad_queries_are_422(search: Search, params: dict[str, Any], field: str) -> None:
    response = await search.find(**params)
    assert response.status_code == 422 and response.json()["fields"][0]["field"] == field


async def test_redis_outage_turns_ready_503_while_search_keeps_answering(
    servers: Servers, serve_service: Any, private_server: Any
) -> None:
    redis = private_server("redis")
    settings = await servers.search_settings()
    url, internal_url = await serve_service(
        create_search(settings.model_copy(update={"redis_url": SecretStr(redis.url)}))
    )
    async with (
        httpx.AsyncClient(base_url=url, timeout=20) as client,
        httpx.AsyncClient(base_url=internal_url, timeout=20) as internal,
    ):
        assert (await internal.get("/health/ready")).status_code == 200
        redis.stop()
        down = await internal.get("/health/ready")
        assert down.status_code == 503 and down.json()["failed"] == ["redis"]
        # Search degrades to the database instead of failing.
        during = await client.get("/search/vendors", params={"q": "anything"})
        assert during.status_code == 200 and during.headers["x-cache"] == "bypass"
        redis.start()

        async def recovered() -> bool:
            return (await internal.get("/health/ready")).status_code == 200

        await eventually(recovered, what="readiness after Redis came back")
        await client.get("/search/vendors", params={"q": "anything"})
        assert (await client.get("/search/vendors", params={"q": "anything"})).headers["x-cache"] == "hit"
