"""real-time: matching, outbox and limits as pure functions; then real WebSockets fed by geolocation
through a real NATS server, on two replicas."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import nats
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from services.common.auth import TokenIssuer
from services.common.nats_client import VENDORS_STREAM, ensure_streams, new_event, publish_event
from services.geolocation.app import create_app as create_geolocation
from services.geolocation.settings import Settings as GeoSettings
from services.real_time.app import create_app as create_real_time
from services.real_time.hub import Hub, LocationUpdate
from services.real_time.outbox import Outbox
from services.real_time.settings import Settings as RtSettings
from services.real_time.subscriptions import (
    Circle,
    LimitExceeded,
    Limits,
    ProtocolError,
    parse_subscription,
)

BERLIN = (52.52, 13.405)


def _update(vendor: str, lat: float, lon: float) -> LocationUpdate:
    event = new_event("location.updated", {"vendor_id": vendor, "lat": lat, "lon": lon, "accuracy_m": None})
    return LocationUpdate.from_event(orjson.dumps(event))


def test_areas_and_vendor_ids_match_what_they_cover() -> None:
    limits = Limits()
    box = parse_subscription({"id": "a", "area": {"bbox": [13.3, 52.4, 13.5, 52.6]}}, limits)
    assert box.matches("x", 52.5, 13.4) and not box.matches("x", 52.7, 13.4)
    across = parse_subscription({"id": "b", "area": {"bbox": [179.5, -0.4, -179.5, 0.4]}}, limits)
    assert across.matches("x", 0, 179.9) and across.matches("x", 0, -179.9) and not across.matches("x", 0, 0)
    ring = {"circle": {"lat": 52.52, "lon": 13.405, "radius_m": 1000}}
    circle = parse_subscription({"id": "c", "area": ring, "vendor_ids": ["far"]}, limits)
    assert circle.matches("x", 52.52 + 800 / 111_320, 13.405)  # 800 m north
    assert not circle.matches("x", 52.52 + 1200 / 111_320, 13.405)  # 1.2 km north
    assert circle.matches("far", -33.9, 151.2)  # a followed vendor matches anywhere
    assert Circle(89.99, 0, 5000).contains(89.999, 120.0)  # near the pole the box spans every longitude


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"area": {"bbox": [0, 0, 0.1, 0.1]}}, ProtocolError),
        ({"id": "x"}, ProtocolError),
        ({"id": "x", "area": {"bbox": [0, 1, 0.1, 0.5]}}, ProtocolError),
        ({"id": "x", "area": {"circle": {"lat": 91, "lon": 0, "radius_m": 10}}}, ProtocolError),
        ({"id": "x", "area": {"circle": {"lat": 0, "lon": 0, "radius_m": float("nan")}}}, ProtocolError),
        ({"id": "x", "vendor_ids": [1, 2]}, ProtocolError),
        ({"id": "x", "area": {"bbox": [0, 0, 5, 0.1]}}, LimitExceeded),
        ({"id": "x", "area": {"circle": {"lat": 0, "lon": 0, "radius_m": 60_000}}}, LimitExceeded),
        ({"id": "x", "vendor_ids": [str(i) for i in range(201)]}, LimitExceeded),
    ],
)
def test_bad_and_oversized_subscriptions_are_refused(message: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_subscription(message, Limits())


async def test_outbox_coalesces_per_vendor_and_reports_overflow() -> None:
    box = Outbox(max_pending=2)
    box.put("a", b"1")
    box.put("b", b"2")
    box.put("a", b"3")
    assert box.take() == [b"3", b"2"] and not box.overflowed  # newest of "a", in first-seen order
    with pytest.raises(TimeoutError):  # nothing pending: the writer sleeps
        async with asyncio.timeout(0.01):
            await box.wait()
    box.put("a", b"4")
    box.put("b", b"5")
    box.put("c", b"6")
    assert box.overflowed


async def test_hub_routes_each_update_to_matching_clients_only() -> None:
    hub = Hub(limits=Limits(max_subscriptions=2), outbox_size=10)
    near, follower, other = hub.connect("u1"), hub.connect("u2"), hub.connect("u3")
    ring = {"circle": {"lat": 52.52, "lon": 13.405, "radius_m": 500}}
    paris = {"bbox": [2.2, 48.8, 2.4, 48.9]}
    hub.subscribe(near, parse_subscription({"id": "s", "area": ring}, hub.limits))
    hub.subscribe(follower, parse_subscription({"id": "s", "vendor_ids": ["v9"]}, hub.limits))
    hub.subscribe(other, parse_subscription({"id": "s", "area": paris}, hub.limits))
    assert hub.publish(_update("v1", 52.521, 13.405)) == 1
    assert hub.publish(_update("v9", 52.521, 13.405)) == 2
    assert [len(c.outbox) for c in (near, follower, other)] == [2, 1, 0]
    with pytest.raises(LimitExceeded):
        for i in range(3):
            hub.subscribe(other, parse_subscription({"id": f"x{i}", "vendor_ids": ["v"]}, hub.limits))
    hub.disconnect(follower)
    assert hub.publish(_update("v9", 0, 0)) == 0


async def test_batched_hub_holds_updates_until_the_tick_then_wakes_only_clients_with_updates() -> None:
    hub = Hub(limits=Limits(max_subscriptions=2), outbox_size=10, batch_s=0.02)
    near, far = hub.connect("u1"), hub.connect("u2")
    ring = {"circle": {"lat": 52.52, "lon": 13.405, "radius_m": 500}}
    hub.subscribe(near, parse_subscription({"id": "s", "area": ring}, hub.limits))
    hub.subscribe(far, parse_subscription({"id": "s", "vendor_ids": ["v9"]}, hub.limits))
    hub.publish(_update("v1", 52.521, 13.405))
    hub.publish(_update("v2", 52.521, 13.405))
    with pytest.raises(TimeoutError):  # queued, but the writer sleeps until the tick
        async with asyncio.timeout(0.01):
            await near.outbox.wait()
    assert hub.flush() == 1
    async with asyncio.timeout(0.01):
        await near.outbox.wait()
    assert len(near.outbox.take()) == 2  # both updates in one frame
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await far.outbox.wait()
    assert hub.flush() == 0


async def test_batched_outbox_wakes_at_once_on_overflow() -> None:
    box = Outbox(max_pending=1)
    box.put("a", b"1", wake=False)
    box.put("b", b"2", wake=False)
    async with asyncio.timeout(0.01):
        await box.wait()
    assert box.overflowed


class Stack:
    def __init__(self, http: httpx.AsyncClient, rt_urls: list[str], issuer: TokenIssuer, js: Any) -> None:
        self.http, self.rt_urls, self.issuer, self.js = http, rt_urls, issuer, js

    def token(self, user: str) -> str:
        return self.issuer.issue(user, "vendor")

    async def vendor(self, owner: str) -> str:
        vendor_id = str(uuid.uuid4())
        await publish_event(
            self.js,
            new_event("vendor.created", {"id": vendor_id, "owner_id": owner, "active": True, "version": 1}),
        )
        for _ in range(500):  # until geolocation's consumer has seen it
            resp = await self.move(vendor_id, owner, 0.0, 0.0)
            if resp.status_code == 200:
                return vendor_id
            await asyncio.sleep(0.02)
        raise AssertionError("vendor never became known to geolocation")

    async def move(self, vendor_id: str, owner: str, lat: float, lon: float) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(owner)}"}
        return await self.http.put(
            f"/api/locations/vendors/{vendor_id}", json={"lat": lat, "lon": lon}, headers=headers
        )

    async def client(self, replica: int = 0, user: str = "viewer") -> ClientConnection:
        ws = await connect(self.rt_urls[replica], compression=None)
        await ws.send(orjson.dumps({"type": "auth", "token": self.token(user)}).decode())
        assert (await next_frame(ws))["type"] == "ready"
        return ws


async def next_frame(ws: ClientConnection, kinds: tuple[str, ...] = ()) -> dict[str, Any]:
    while True:
        frame = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        if not kinds or frame["type"] in kinds:
            return frame


async def subscribe(ws: ClientConnection, **sub: Any) -> None:
    await ws.send(orjson.dumps({"type": "subscribe", **sub}).decode())
    assert (await next_frame(ws, ("subscribed", "error")))["type"] == "subscribed"


@pytest.fixture
async def stack(
    redis_url: str, nats_url: str, public_pem: str, signing_seed: str, serve: Callable[[Any], Awaitable[str]]
) -> AsyncIterator[Stack]:
    geo = GeoSettings(redis_url=redis_url, nats_servers=[nats_url], jwt_public_key=public_pem)
    geo_url = await serve(create_geolocation(geo))
    rt_urls = []
    for _ in range(2):  # two replicas: each must see every update
        rt = RtSettings(
            nats_servers=[nats_url],
            jwt_public_key=public_pem,
            realtime_max_subscriptions=2,
            realtime_heartbeat_seconds=0.3,
            realtime_auth_timeout_seconds=0.5,
        )
        rt_urls.append((await serve(create_real_time(rt))).replace("http", "ws") + "/api/realtime/ws")
    nc = await nats.connect(nats_url)
    await ensure_streams(nc.jetstream(), VENDORS_STREAM)
    async with httpx.AsyncClient(base_url=geo_url, timeout=10) as http:
        yield Stack(http, rt_urls, TokenIssuer(signing_seed, 900), nc.jetstream())
    await nc.close()


async def test_update_posted_to_geolocation_reaches_matching_clients_on_any_replica(stack: Stack) -> None:
    inside, outside = await stack.vendor("o1"), await stack.vendor("o2")
    area = {"circle": {"lat": BERLIN[0], "lon": BERLIN[1], "radius_m": 2000}}
    watchers = [await stack.client(0), await stack.client(1)]
    for ws in watchers:
        await subscribe(ws, id="berlin", area=area)
    follower = await stack.client(1)
    await subscribe(follower, id="one", vendor_ids=[outside])

    assert (await stack.move(outside, "o2", 48.8566, 2.3522)).status_code == 200  # Paris: outside the area
    assert (await stack.move(inside, "o1", BERLIN[0] + 0.005, BERLIN[1])).status_code == 200
    for ws in watchers:
        frame = await next_frame(ws, ("updates",))
        # The Paris update came first; had it matched it would be in this frame or an earlier one.
        assert [u["vendor_id"] for u in frame["updates"]] == [inside]
        assert frame["updates"][0]["lat"] == pytest.approx(BERLIN[0] + 0.005)
    frame = await next_frame(follower, ("updates",))
    assert [u["vendor_id"] for u in frame["updates"]] == [outside]
    for ws in (*watchers, follower):
        await ws.close()


async def test_bad_token_missing_auth_and_limits_close_with_a_reason(stack: Stack) -> None:
    async with connect(stack.rt_urls[0], compression=None) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": "not-a-token"}).decode())
        with pytest.raises(ConnectionClosed) as closed:
            await next_frame(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008 and "authentication failed" in closed.value.rcvd.reason
    async with connect(stack.rt_urls[0], compression=None) as ws:  # says nothing
        with pytest.raises(ConnectionClosed) as closed:
            await next_frame(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    headers = {"Authorization": f"Bearer {stack.token('viewer')}"}
    async with connect(stack.rt_urls[0], compression=None, additional_headers=headers) as ws:
        assert (await next_frame(ws))["type"] == "ready"
        await ws.send("{not json")
        assert "not JSON" in (await next_frame(ws, ("error",)))["reason"]  # answered, still open
        await ws.send(orjson.dumps({"type": "subscribe", "id": "x"}).decode())
        assert "area" in (await next_frame(ws, ("error",)))["reason"]
        for i in range(2):
            await subscribe(ws, id=f"s{i}", vendor_ids=["v"])
        await ws.send(orjson.dumps({"type": "subscribe", "id": "s3", "vendor_ids": ["v"]}).decode())
        with pytest.raises(ConnectionClosed) as closed:
            await next_frame(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert "at most 2 subscriptions" in closed.value.rcvd.reason


async def test_heartbeat_pings_and_a_silent_client_is_dropped(stack: Stack) -> None:
    ws = await stack.client(0)
    assert (await next_frame(ws, ("ping",)))["type"] == "ping"
    await ws.send('{"type": "pong"}')
    # Then stay silent: three missed heartbeats (0.9 s) close the connection.
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(20):
            await next_frame(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408


async def test_connection_closes_when_its_token_expires(stack: Stack, signing_seed: str) -> None:
    short = TokenIssuer(signing_seed, 2).issue("brief", "customer")
    async with connect(stack.rt_urls[0], compression=None) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": short}).decode())
        assert (await next_frame(ws))["type"] == "ready"
        await subscribe(ws, id="s", vendor_ids=["v"])
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                frame = await next_frame(ws)
                if frame["type"] == "ping":
                    await ws.send('{"type": "pong"}')  # alive, yet the token runs out
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008 and closed.value.rcvd.reason == "token expired"


def test_areas_beyond_the_geo_index_are_clamped_or_refused() -> None:
    # A box reaching the pole is clamped to +-85.05112878 (positions never lie beyond it)...
    box = parse_subscription({"id": "n", "area": {"bbox": [0, 85.0, 0.5, 86.0]}}, Limits())
    assert box.area is not None and box.area.max_lat == 85.05112878  # type: ignore[union-attr]
    assert box.matches("x", 85.05, 0.2)
    # ...a circle's centre must lie within it, as for nearby.
    with pytest.raises(ProtocolError, match=r"lat must be between -85\.05112878 and 85\.05112878"):
        parse_subscription({"id": "c", "area": {"circle": {"lat": 86, "lon": 0, "radius_m": 10}}}, Limits())


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"type": "subscribe", "id": "a\u0000b", "vendor_ids": ["v"]}, "id"),
        ({"type": "subscribe", "id": "s", "vendor_ids": ["v", "w\u0000"]}, "vendor_ids.1"),
        ({"type": "unsubscribe", "id": "\u0000"}, "id"),
        ({"type": "sub\u0000scribe"}, "type"),
    ],
)
async def test_a_nul_in_any_message_string_closes_with_1007_naming_the_field(
    stack: Stack, message: dict[str, Any], field: str
) -> None:
    ws = await stack.client(0)
    await ws.send(orjson.dumps(message).decode())
    with pytest.raises(ConnectionClosed) as closed:
        await next_frame(ws, ("updates",))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
    assert closed.value.rcvd.reason == f"{field}: must not contain the NUL character (\\u0000)"


async def test_a_nul_in_the_auth_message_closes_with_1007(stack: Stack) -> None:
    async with connect(stack.rt_urls[0], compression=None) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": stack.token("x") + "\u0000"}).decode())
        with pytest.raises(ConnectionClosed) as closed:
            await next_frame(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
        assert closed.value.rcvd.reason.startswith("token: must not contain")
