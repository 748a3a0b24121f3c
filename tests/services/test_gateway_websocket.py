"""WebSockets through api-gateway: one public address for real-time, the token checked at the edge,
limits, and close codes passed on both ways (real geolocation, real-time, NATS and Redis behind it)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import nats
import orjson
import pytest
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from localdev.servers import free_port
from services.api_gateway.app import create_app as create_gateway
from services.common.auth import TokenIssuer, generate_seed
from services.common.metrics import sample_value
from services.common.nats_client import VENDORS_STREAM, ensure_streams, new_event, publish_event
from services.geolocation.app import create_app as create_geolocation
from services.geolocation.settings import Settings as GeoSettings
from services.real_time.app import create_app as create_real_time
from services.real_time.settings import Settings as RtSettings
from tests.services.marketplace import Servers, eventually

BERLIN = (52.52, 13.405)
WS_PATH = "/api/realtime/ws"


class Edge:
    """The gateway in front of real geolocation and real-time; clients know only its address."""

    def __init__(self, url: str, issuer: TokenIssuer, js: Any) -> None:
        self.url, self.issuer, self.js = url, issuer, js
        self.ws_url = url.replace("http://", "ws://") + WS_PATH

    def token(self, user: str, role: str = "customer") -> str:
        return self.issuer.issue(user, role)  # type: ignore[arg-type]

    async def connect(self, user: str = "viewer", *, header: bool = False) -> ClientConnection:
        token = self.token(user)
        if header:
            ws = await connect(self.ws_url, compression=None, additional_headers=_bearer(token))
        else:
            ws = await connect(self.ws_url, compression=None)
            await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
        assert (await frame(ws))["type"] == "ready"
        return ws

    async def vendor(self, http: httpx.AsyncClient, owner: str) -> str:
        vendor_id = str(uuid.uuid4())
        await publish_event(
            self.js,
            new_event("vendor.created", {"id": vendor_id, "owner_id": owner, "active": True, "version": 1}),
        )

        async def known() -> bool:
            return (await self.move(http, vendor_id, owner, *BERLIN)).status_code == 200

        await eventually(known, what="geolocation learning the vendor")
        return vendor_id

    async def move(
        self, http: httpx.AsyncClient, vendor_id: str, owner: str, lat: float, lon: float
    ) -> httpx.Response:
        return await http.put(
            f"/api/locations/vendors/{vendor_id}",
            json={"lat": lat, "lon": lon},
            headers=_bearer(self.token(owner, "vendor")),
        )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def frame(ws: ClientConnection, kinds: tuple[str, ...] = ()) -> dict[str, Any]:
    while True:
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        if not kinds or message["type"] in kinds:
            return dict(message)


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(100):
            await frame(ws)
    assert closed.value.rcvd is not None, "the connection ended without a close frame"
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def start_edge(servers: Servers, serve: Any, realtime: str | None = None, **gateway: Any) -> Edge:
    geo = GeoSettings(
        redis_url=servers.redis_url, nats_servers=[servers.nats_url], jwt_public_key=servers.public_pem
    )
    if realtime is None:
        rt = RtSettings(
            nats_servers=[servers.nats_url],
            jwt_public_key=servers.public_pem,
            realtime_max_subscriptions=2,
        )
        realtime = await serve(create_real_time(rt))
    upstreams = {"geolocation": await serve(create_geolocation(geo)), "real-time": realtime}
    url = await serve(create_gateway(servers.gateway_settings(upstreams, **gateway)))
    nc = await nats.connect(servers.nats_url)
    await ensure_streams(nc.jetstream(), VENDORS_STREAM)
    return Edge(url, servers.issuer(), nc.jetstream())


async def test_updates_reach_clients_through_the_gateway_with_either_way_of_authenticating(
    servers: Servers, serve: Any
) -> None:
    edge = await start_edge(servers, serve)
    async with httpx.AsyncClient(base_url=edge.url, timeout=10) as http:
        vendor = await edge.vendor(http, "owner-1")
        by_message = await edge.connect("ann")  # browsers: the token in the first message
        by_header = await edge.connect("bob", header=True)  # other clients: the handshake's header
        area = {"circle": {"lat": BERLIN[0], "lon": BERLIN[1], "radius_m": 2000}}
        await by_message.send(orjson.dumps({"type": "subscribe", "id": "near", "area": area}).decode())
        await by_header.send(
            orjson.dumps({"type": "subscribe", "id": "one", "vendor_ids": [vendor]}).decode()
        )
        for ws in (by_message, by_header):
            assert (await frame(ws, ("subscribed",)))["type"] == "subscribed"
        moved = await edge.move(http, vendor, "owner-1", BERLIN[0] + 0.001, BERLIN[1])
        assert moved.status_code == 200, moved.text
        for ws in (by_message, by_header):
            update = (await frame(ws, ("updates",)))["updates"][-1]
            assert update["vendor_id"] == vendor and update["lat"] == pytest.approx(BERLIN[0] + 0.001)
        for ws in (by_message, by_header):
            await ws.close()


async def test_bad_or_missing_tokens_are_refused_at_the_edge(servers: Servers, serve: Any) -> None:
    edge = await start_edge(servers, serve, ws_handshake_timeout_seconds=0.5)
    seen_by_real_time = sample_value("realtime_closed_total", {"code": "1008"})
    forged = TokenIssuer(generate_seed(), 60).issue("mallory", "customer")
    with pytest.raises(InvalidStatus) as refused:
        await connect(edge.ws_url, additional_headers=_bearer(forged))
    assert refused.value.response.status_code == 401
    assert b"authentication failed" in refused.value.response.body
    async with connect(edge.ws_url) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": forged}).decode())
        code, reason = await closed_with(ws)
        assert code == 1008 and reason.startswith("authentication failed")
    async with connect(edge.ws_url) as ws:  # says nothing within the handshake time
        code, reason = await closed_with(ws)
        assert code == 1008 and "within 0.5 s" in reason
    async with connect(edge.ws_url) as ws:
        await ws.send('{"type": "subscribe", "id": "x"}')  # anything but auth first
        assert (await closed_with(ws))[0] == 1008
    # None of them reached real-time, which would have closed them itself.
    assert sample_value("realtime_closed_total", {"code": "1008"}) == seen_by_real_time
    with pytest.raises(InvalidStatus) as nowhere:  # only the routes' declared WebSocket paths upgrade
        await connect(edge.url.replace("http://", "ws://") + "/api/realtime/other")
    assert nowhere.value.response.status_code == 404


async def test_connections_per_user_message_size_and_idle_limits(servers: Servers, serve: Any) -> None:
    edge = await start_edge(
        servers,
        serve,
        ws_max_connections_per_user=2,
        ws_max_message_bytes=2048,
        ws_idle_timeout_seconds=0.8,
    )
    first, second = await edge.connect("carol"), await edge.connect("carol", header=True)
    with pytest.raises(InvalidStatus) as third:
        await connect(edge.ws_url, additional_headers=_bearer(edge.token("carol")))
    assert third.value.response.status_code == 429 and b"limit 2" in third.value.response.body
    async with connect(edge.ws_url) as fourth:
        await fourth.send(orjson.dumps({"type": "auth", "token": edge.token("carol")}).decode())
        code, reason = await closed_with(fourth)
        assert code == 1008 and "too many WebSocket connections" in reason
    other_user = await edge.connect("dave")  # the limit is per user
    await second.close()
    replacement = await edge.connect("carol")  # a closed tunnel frees its place
    # A message over WS_MAX_MESSAGE_BYTES: 1009 from the gateway's server.
    await first.send(orjson.dumps({"type": "subscribe", "id": "x" * 4000}).decode())
    assert (await closed_with(first))[0] == 1009
    # Silence both ways (real-time pings only every 20 s): the gateway ends the tunnel.
    code, reason = await closed_with(other_user)
    assert code == 4408 and "0.8 s" in reason
    await replacement.close()


def stand_in(seen: list[tuple[int, str]]) -> FastAPI:
    """A WebSocket upstream that echoes, closes with the code it is told, and records how the client
    side closed: shows what crosses the gateway, which real-time does not report."""
    app = FastAPI()

    @app.websocket(WS_PATH)
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                text = await ws.receive_text()
                if text.startswith("close "):
                    _, code, reason = text.split(" ", 2)
                    await ws.close(int(code), reason)
                    return
                await ws.send_text(text)
        except WebSocketDisconnect as gone:
            seen.append((gone.code, gone.reason))

    return app


async def test_close_codes_and_reasons_pass_through_both_ways(servers: Servers, serve: Any) -> None:
    seen: list[tuple[int, str]] = []
    edge = await start_edge(servers, serve, realtime=await serve(stand_in(seen)))
    headers = _bearer(edge.token("erin"))
    async with connect(edge.ws_url, additional_headers=headers) as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send("close 4321 the upstream says bye")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4321, "the upstream says bye")
    ws = await connect(edge.ws_url, additional_headers=headers)
    await ws.send("hello")
    await ws.recv()
    await ws.close(4000, "the client says bye")

    async def heard() -> bool:
        return bool(seen)

    await eventually(heard, what="the upstream hearing the client's close")
    assert seen == [(4000, "the client says bye")]


async def test_real_time_unreachable_is_502_or_1014(servers: Servers, serve: Any) -> None:
    edge = await start_edge(servers, serve, realtime=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(InvalidStatus) as refused:
        await connect(edge.ws_url, additional_headers=_bearer(edge.token("frank")))
    assert refused.value.response.status_code == 502
    assert b"real-time is unavailable" in refused.value.response.body
    async with connect(edge.ws_url) as ws:
        await ws.send(orjson.dumps({"type": "auth", "token": edge.token("frank")}).decode())
        assert await closed_with(ws) == (1014, "real-time is unavailable")


async def test_a_replica_holds_a_bounded_number_of_tunnels_whatever_the_pool(
    servers: Servers, serve: Any
) -> None:
    # More tunnels than the HTTP pool has connections: tunnels do not take the routes' pooled ones.
    edge = await start_edge(servers, serve, upstream_pool_size=1, ws_max_connections=3)
    held = [await edge.connect(f"user-{i}") for i in range(3)]
    async with httpx.AsyncClient(base_url=edge.url, timeout=10) as http:
        await edge.vendor(http, "owner-pool")  # HTTP to real-time's neighbours still flows
    with pytest.raises(InvalidStatus) as full:
        await connect(edge.ws_url, additional_headers=_bearer(edge.token("user-9")))
    assert full.value.response.status_code == 503
    async with connect(edge.ws_url) as late:
        await late.send(orjson.dumps({"type": "auth", "token": edge.token("user-8")}).decode())
        assert (await closed_with(late))[0] == 1013
    for ws in held:
        await ws.close()
