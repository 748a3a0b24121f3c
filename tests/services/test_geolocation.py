"""geolocation against real Redis and NATS: validation, ownership, nearest search, stale vendors, events."""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import nats
import orjson
import pytest
from redis.asyncio import Redis

from services.api_gateway.app import create_app as create_gateway
from services.api_gateway.routes_table import ROUTES, upstream_setting
from services.api_gateway.settings import Settings as GatewayConfig
from services.common.auth import TokenIssuer
from services.common.metrics import sample_value
from services.common.nats_client import VENDORS_STREAM, ensure_streams, new_event, publish_event
from services.common.redis_pipeline import PipelinedRedis
from services.geolocation.app import create_app
from services.geolocation.events import VendorChange
from services.geolocation.schemas import NearbyOut
from services.geolocation.settings import Settings
from services.geolocation.store import Keys, LocationStore
from services.geolocation.vendor_consumer import handle_batch
from services.vendor_management.app import create_app as create_vendors
from services.vendor_management.settings import Settings as VendorSettings

CENTER = (52.5200, 13.4050)  # lat, lon
STALE_AFTER = 60.0


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    # Written out here, not imported, so the test checks the service rather than agreeing with it.
    r = 6372797.560856
    p1, p2, dp, dl = map(math.radians, (lat1, lat2, lat2 - lat1, lon2 - lon1))
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(h))


def offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    return lat + north_m / 111_320.0, lon + east_m / (111_320.0 * math.cos(math.radians(lat)))


class Geo:
    def __init__(
        self, http: httpx.AsyncClient, js: Any, redis: Redis, scripts: PipelinedRedis, issuer: TokenIssuer
    ) -> None:
        self.http, self.js, self.redis, self.issuer = http, js, redis, issuer
        self.scripts = scripts
        self.store = LocationStore(redis, scripts, STALE_AFTER)
        self.versions: dict[str, int] = {}

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.issue(user, 'vendor')}"}

    async def vendor_event(
        self, kind: str, vendor_id: str, owner: str, active: bool = True, version: int | None = None
    ) -> None:
        """Publish a vendor event; its version is one past the last one sent unless given."""
        version = version or self.versions.get(vendor_id, 0) + 1
        self.versions[vendor_id] = max(version, self.versions.get(vendor_id, 0))
        data = {"id": vendor_id, "owner_id": owner, "name": "stall", "active": active, "version": version}
        await publish_event(self.js, new_event(f"vendor.{kind}", data))

    async def wait_vendor(self, vendor_id: str, field: str, value: str | None) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            got = await self.redis.hget(self.store.keys.vendor(vendor_id), field)
            if (got.decode() if isinstance(got, bytes) else got) == value:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"vendor {vendor_id} never got {field}={value}")

    async def new_vendor(self, owner: str) -> str:
        vendor_id = str(uuid.uuid4())
        await self.vendor_event("created", vendor_id, owner)
        await self.wait_vendor(vendor_id, "owner", owner)
        return vendor_id

    async def put(self, vendor_id: str, user: str, body: dict[str, Any] | bytes) -> httpx.Response:
        kwargs: dict[str, Any] = {"content": body} if isinstance(body, bytes) else {"json": body}
        headers = {**self.auth(user), "Content-Type": "application/json"}
        return await self.http.put(f"/api/locations/vendors/{vendor_id}", headers=headers, **kwargs)


@pytest.fixture
async def geo(
    redis_url: str,
    nats_url: str,
    public_pem: str,
    signing_seed: str,
    serve: Callable[[Any], Awaitable[str]],
) -> AsyncIterator[Geo]:
    settings = Settings(
        redis_url=redis_url,
        nats_servers=[nats_url],
        jwt_public_key=public_pem,
        location_stale_after_seconds=STALE_AFTER,
        nearby_max_radius_m=20_000,
    )
    url = await serve(create_app(settings))
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await ensure_streams(js, VENDORS_STREAM)
    redis = Redis.from_url(redis_url)
    scripts = PipelinedRedis(redis_url, timeout=5, connect_timeout=2, retries=1)
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        yield Geo(http, js, redis, scripts, TokenIssuer(signing_seed, 900))
    await scripts.aclose()
    await redis.aclose()
    await nc.close()


async def test_position_validation_and_auth(geo: Geo) -> None:
    vendor = await geo.new_vendor("owner-1")
    now = datetime.now(UTC)
    bad: list[tuple[dict[str, Any] | bytes, str]] = [
        ({"lat": 90.5, "lon": 0}, "lat"),
        ({"lat": 0, "lon": -180.01}, "lon"),
        ({"lon": 0}, "lat"),
        (b'{"lat": NaN, "lon": 1}', "lat"),
        (b'{"lat": 1, "lon": Infinity}', "lon"),
        ({"lat": 1, "lon": 1, "accuracy_m": -1}, "accuracy_m"),
        ({"lat": 1, "lon": 1, "speed": 3}, "speed"),
        ({"lat": 1, "lon": 1, "timestamp": "2026-01-01T00:00:00"}, "timestamp"),  # no time zone
        ({"lat": 1, "lon": 1, "timestamp": (now - timedelta(seconds=STALE_AFTER + 5)).isoformat()}, "older"),
        ({"lat": 1, "lon": 1, "timestamp": (now + timedelta(minutes=5)).isoformat()}, "ahead"),
    ]
    for body, reason in bad:
        resp = await geo.put(vendor, "owner-1", body)
        assert resp.status_code == 422, (body, resp.text)
        assert reason in resp.text, (body, resp.text)
    no_token = await geo.http.put(f"/api/locations/vendors/{vendor}", json={"lat": 1, "lon": 1})
    assert no_token.status_code == 401
    forged = await geo.http.put(
        f"/api/locations/vendors/{vendor}",
        json={"lat": 1, "lon": 1},
        headers={"Authorization": "Bearer a.b.c"},
    )
    assert forged.status_code == 401
    for params in (
        {"lat": 91, "lon": 0},
        {"lat": 0},
        {"lat": 0, "lon": 0, "radius_m": 30_000},
        {"lat": 0, "lon": 0, "limit": 0},
        {"lat": 0, "lon": 0, "limit": 1000},
    ):
        resp = await geo.http.get("/api/locations/nearby", params=params, headers=geo.auth("x"))
        assert resp.status_code == 422, (params, resp.text)
    assert (await geo.http.get("/api/locations/nearby", params={"lat": 0, "lon": 0})).status_code == 401
    # The token is checked before the query: a bad query without a token is still a 401.
    assert (await geo.http.get("/api/locations/nearby", params={"lat": 91})).status_code == 401


async def test_nearby_survives_a_redis_that_forgot_its_scripts_and_dropped_its_connections(geo: Geo) -> None:
    # nearby's script goes over the service's shared connection; these are the two ways a Redis
    # restart breaks it, and each must cost a reload or a reconnect, never an error to the caller.
    now = time.time()
    await geo.store.apply_vendor(VendorChange("near-1", "owner", True, False, 1))
    assert await geo.store.update("near-1", "owner", CENTER[1], CENTER[0], now, None, now=now) == 0
    params = {"lat": CENTER[0], "lon": CENTER[1], "radius_m": 100}
    url, auth = "/api/locations/nearby", geo.auth("c")
    assert (await geo.http.get(url, params=params, headers=auth)).status_code == 200
    drop_connections = lambda: geo.redis.client_kill_filter(_type="normal", skipme=True)  # noqa: E731
    for break_redis in (geo.redis.script_flush, drop_connections):
        await break_redis()
        resp = await geo.http.get(url, params=params, headers=auth)
        assert resp.status_code == 200, resp.text
        assert [r["vendor_id"] for r in resp.json()["results"]] == ["near-1"]


async def test_only_the_owner_of_an_active_known_vendor_moves_it(geo: Geo) -> None:
    vendor = await geo.new_vendor("owner-1")
    lat, lon = CENTER
    assert (await geo.put(vendor, "intruder", {"lat": lat, "lon": lon})).status_code == 403
    assert (await geo.put(str(uuid.uuid4()), "owner-1", {"lat": lat, "lon": lon})).status_code == 404
    ok = await geo.put(vendor, "owner-1", {"lat": lat, "lon": lon, "accuracy_m": 8})
    assert ok.status_code == 200, ok.text
    got = await geo.http.get(f"/api/locations/vendors/{vendor}", headers=geo.auth("someone"))
    assert got.status_code == 200
    assert got.json()["lat"] == pytest.approx(lat, abs=1e-5) and got.json()["accuracy_m"] == 8

    older = (datetime.now(UTC) - timedelta(seconds=10)).isoformat()
    late = await geo.put(vendor, "owner-1", {"lat": lat, "lon": lon, "timestamp": older})
    assert late.status_code == 409 and "newer" in late.text

    await geo.vendor_event("updated", vendor, "owner-1", active=False)
    await geo.wait_vendor(vendor, "active", "0")
    assert (await geo.put(vendor, "owner-1", {"lat": lat, "lon": lon})).status_code == 409
    gone = await geo.http.get(f"/api/locations/vendors/{vendor}", headers=geo.auth("someone"))
    assert gone.status_code == 404  # an inactive vendor leaves the map at once

    await geo.vendor_event("deleted", vendor, "owner-1")
    await geo.wait_vendor(vendor, "owner", None)
    assert (await geo.put(vendor, "owner-1", {"lat": lat, "lon": lon})).status_code == 404


async def test_nearby_is_the_exact_nearest_fresh_vendors_in_order(geo: Geo) -> None:
    rng = random.Random(7)
    now = time.time()
    expected: list[tuple[float, str]] = []
    for i in range(400):
        vendor_id, dist = f"v{i:03d}", 9000 * math.sqrt(rng.random())
        angle = rng.uniform(0, 2 * math.pi)
        lat, lon = offset(*CENTER, dist * math.cos(angle), dist * math.sin(angle))
        await geo.store.apply_vendor(VendorChange(vendor_id, "owner", True, False, 1))
        stale = i % 5 == 0  # every fifth vendor went silent long ago, some of them very close
        ts = now - STALE_AFTER - 30 if stale else now - rng.uniform(0, 30)
        status = await geo.store.update(vendor_id, "owner", lon, lat, ts, None, now=ts)
        assert status == 0
        if not stale:
            expected.append((haversine_m(*CENTER, lat, lon), vendor_id))
    expected.sort()
    for radius, limit in ((5000, 20), (300, 50), (20_000, 100), (50, 5)):
        params = {"lat": CENTER[0], "lon": CENTER[1], "radius_m": radius, "limit": limit}
        resp = await geo.http.get("/api/locations/nearby", params=params, headers=geo.auth("customer"))
        assert resp.status_code == 200, resp.text
        results = NearbyOut.model_validate(resp.json()).model_dump()["results"]
        want = [(d, v) for d, v in expected if d <= radius][:limit]
        assert [r["vendor_id"] for r in results] == [v for _, v in want], (radius, limit)
        for row, (dist, _) in zip(results, want, strict=True):
            assert row["distance_m"] == pytest.approx(dist, rel=5e-3, abs=1.0)
        distances = [r["distance_m"] for r in results]
        assert distances == sorted(distances)
        assert all(int(r["vendor_id"][1:]) % 5 != 0 for r in results)  # stale vendors never appear


async def test_accepted_update_is_published_as_location_updated(geo: Geo, nats_url: str) -> None:
    vendor = await geo.new_vendor("owner-2")
    nc = await nats.connect(nats_url)
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_msg(msg: Any) -> None:
        await received.put(msg.data)

    await nc.subscribe("location.updated", cb=on_msg)
    await nc.flush()
    resp = await geo.put(vendor, "owner-2", {"lat": 48.1, "lon": 11.5, "accuracy_m": 3})
    assert resp.status_code == 200
    event = orjson.loads(await asyncio.wait_for(received.get(), 5))
    assert event["type"] == "location.updated"
    accepted_at = event["data"].pop("accepted_at")
    assert event["data"] == {"vendor_id": vendor, "lat": 48.1, "lon": 11.5, "accuracy_m": 3}
    assert time.time() - 10 < accepted_at <= time.time()
    info = await geo.js.stream_info("LOCATIONS")
    assert info.state.messages == 1  # also kept in the stream for durable consumers
    refused = await geo.put(vendor, "not-owner", {"lat": 48.2, "lon": 11.5})
    assert refused.status_code == 403
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(received.get(), 0.3)  # a refused update publishes nothing
    await nc.close()


async def test_reached_through_the_gateway_with_its_path_unchanged(
    geo: Geo, redis_url: str, public_pem: str, serve: Callable[[Any], Awaitable[str]]
) -> None:
    upstream = str(geo.http.base_url).rstrip("/")
    upstreams: dict[str, Any] = {upstream_setting(route.service): upstream for route in ROUTES}
    settings = GatewayConfig(
        service_name="api-gateway",
        redis_url=redis_url,
        jwt_public_key=public_pem,
        **upstreams,
    )
    vendor = await geo.new_vendor("owner-9")
    async with httpx.AsyncClient(base_url=await serve(create_gateway(settings)), timeout=10) as gateway:
        moved = await gateway.put(
            f"/api/locations/vendors/{vendor}", json={"lat": 1.5, "lon": 2.5}, headers=geo.auth("owner-9")
        )
        assert moved.status_code == 200, moved.text
        near = await gateway.get(
            "/api/locations/nearby",
            params={"lat": 1.5, "lon": 2.5, "radius_m": 100},
            headers=geo.auth("customer"),
        )
        assert [r["vendor_id"] for r in near.json()["results"]] == [vendor]
        assert (await gateway.get("/api/locations/nearby", params={"lat": 1, "lon": 2})).status_code == 401


async def test_vendor_made_in_vendor_management_is_movable_by_its_owner_only(
    geo: Geo,
    new_database: Callable[[], Awaitable[str]],
    nats_url: str,
    public_pem: str,
    serve: Callable[[Any], Awaitable[str]],
) -> None:
    # The real producer of vendor events, so the event contract is checked end to end.
    settings = VendorSettings(
        service_name="vendor-management",
        database_url=await new_database(),
        nats_servers=[nats_url],
        jwt_public_key=public_pem,
    )
    owner = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=await serve(create_vendors(settings)), timeout=10) as vendors:
        stall = {"name": "Taco Truck", "category": "food"}
        made = await vendors.post("/vendors", json=stall, headers=geo.auth(owner))
        assert made.status_code == 201, made.text
        vendor_id = made.json()["id"]
        await geo.wait_vendor(vendor_id, "owner", owner)
        assert (await geo.put(vendor_id, owner, {"lat": 40.0, "lon": -3.7})).status_code == 200
        assert (await geo.put(vendor_id, str(uuid.uuid4()), {"lat": 40.0, "lon": -3.7})).status_code == 403
        closed = await vendors.patch(f"/vendors/{vendor_id}", json={"active": False}, headers=geo.auth(owner))
        assert closed.status_code == 200, closed.text
        await geo.wait_vendor(vendor_id, "active", "0")
        assert (await geo.put(vendor_id, owner, {"lat": 40.0, "lon": -3.7})).status_code == 409


async def test_out_of_order_vendor_events_leave_the_newest_state(geo: Geo) -> None:
    vendor = await geo.new_vendor("owner-3")  # version 1
    lat, lon = CENTER
    # Closed at version 3; the version 2 that reopened it arrives late (a redelivery, say).
    await geo.vendor_event("updated", vendor, "owner-3", active=False, version=3)
    await geo.wait_vendor(vendor, "version", "3")
    ignored = sample_value("geolocation_vendor_events_total", {"outcome": "ignored"})
    await geo.vendor_event("updated", vendor, "owner-3", active=True, version=2)
    await eventually_value(
        lambda: sample_value("geolocation_vendor_events_total", {"outcome": "ignored"}) - ignored, 1
    )
    assert await geo.redis.hget(geo.store.keys.vendor(vendor), "active") == b"0"
    assert (await geo.put(vendor, "owner-3", {"lat": lat, "lon": lon})).status_code == 409

    # Deleted at version 4; its creation arriving again afterwards does not bring it back.
    await geo.vendor_event("deleted", vendor, "owner-3", version=4)
    await geo.wait_vendor(vendor, "version", "4")
    await geo.vendor_event("created", vendor, "owner-3", active=True, version=1)
    await geo.vendor_event("updated", vendor, "intruder", active=True, version=4)  # same version
    await eventually_value(
        lambda: sample_value("geolocation_vendor_events_total", {"outcome": "ignored"}) - ignored, 3
    )
    assert await geo.redis.hget(geo.store.keys.vendor(vendor), "owner") is None
    assert (await geo.put(vendor, "owner-3", {"lat": lat, "lon": lon})).status_code == 404
    assert (await geo.put(vendor, "intruder", {"lat": lat, "lon": lon})).status_code == 404


async def test_a_failed_ack_neither_stops_the_consumer_nor_loses_the_change(geo: Geo) -> None:
    # A batch whose second ack fails (nats-py refuses a second ack of the same message): the batch
    # goes on, and the change itself is applied.
    vendors = [str(uuid.uuid4()) for _ in range(3)]
    for vendor in vendors:
        await geo.vendor_event("created", vendor, "owner-4")
    sub = await geo.js.pull_subscribe("vendor.*", durable="ack-test", stream=VENDORS_STREAM.name)
    messages = await sub.fetch(3, timeout=5)
    await messages[1].ack()
    # A store of its own (another key prefix), so the service's consumer cannot do the work for it.
    store = LocationStore(geo.redis, geo.scripts, STALE_AFTER, Keys("ack-test"))
    assert await handle_batch(store, messages)  # no exception, and nothing to wait for
    for vendor in vendors:
        assert await geo.redis.hget(store.keys.vendor(vendor), "owner") == b"owner-4"
    with pytest.raises(nats.errors.TimeoutError):
        await sub.fetch(1, timeout=0.5)  # every message was settled


async def eventually_value(read: Callable[[], float], want: float, within: float = 10) -> None:
    deadline = time.monotonic() + within
    while read() != want:
        assert time.monotonic() < deadline, f"value stayed {read()}, wanted {want}"
        await asyncio.sleep(0.02)


async def test_latitudes_the_geo_index_cannot_hold_are_422_naming_the_range(
    geo: Geo, public_pem: str
) -> None:
    vendor = await geo.new_vendor("owner-range")
    for lat in (89.0, 85.06, -85.1):
        resp = await geo.put(vendor, "owner-range", {"lat": lat, "lon": 0})
        assert resp.status_code == 422, resp.text
        assert resp.json()["fields"][0]["field"] == "lat" and "85.05112878" in resp.json()["detail"]
    edge = await geo.put(vendor, "owner-range", {"lat": 85.05112878, "lon": -180})
    assert edge.status_code == 200, edge.text  # the index's own limits are accepted
    for params in ({"lat": -90, "lon": -180}, {"lat": 85.1, "lon": 0}):
        resp = await geo.http.get("/api/locations/nearby", params=params, headers=geo.auth("x"))
        assert resp.status_code == 422 and "-85.05112878 and 85.05112878" in resp.json()["detail"]
    near_pole = await geo.http.get(
        "/api/locations/nearby", params={"lat": -85.05, "lon": 179.9}, headers=geo.auth("x")
    )
    assert near_pole.status_code == 200
    unopened = Settings(
        redis_url="redis://127.0.0.1:9/0", nats_servers=["nats://127.0.0.1:9"], jwt_public_key=public_pem
    )
    schema = create_app(unopened).openapi()  # what /openapi.json serves
    position = schema["components"]["schemas"]["PositionIn"]["properties"]["lat"]
    assert (position["minimum"], position["maximum"]) == (-85.05112878, 85.05112878)
    nearby = {p["name"]: p for p in schema["paths"]["/api/locations/nearby"]["get"]["parameters"]}
    assert nearby["lat"]["schema"]["maximum"] == 85.05112878
