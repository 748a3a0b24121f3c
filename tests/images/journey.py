"""A client's journey across every service, through the gateway: sign up, log in, a vendor created
and found in search (outbox, NATS, read model), its position taken and pushed to a WebSocket
subscriber (real-time's WebSocket, also through the gateway), found nearby, a file uploaded and read
back, webhooks and real-time answering.

Walked by the image tests (containers) and the real-node tests (pods behind their Services).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect

from services.catalog import SERVICES

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(2048)
BERLIN = (52.52, 13.405)


async def walk(gateway: str, upstreams_url: str | None = None) -> None:
    """``gateway``: the gateway's public base URL; ``upstreams_url``: its view of the upstreams (on
    the internal port, when the caller can reach that)."""
    async with httpx.AsyncClient(base_url=gateway, timeout=15) as http:
        if upstreams_url is not None:
            upstreams = (await http.get(upstreams_url)).json()["upstreams"]
            assert {name for name, up in upstreams.items() if up["ready"]} == set(SERVICES) - {"api-gateway"}

        email = f"vendor-{uuid.uuid4().hex[:8]}@example.com"
        registered = await http.post(
            "/api/users/register", json={"email": email, "password": "image test password", "role": "vendor"}
        )
        assert registered.status_code == 201, registered.text
        login = await http.post("/api/users/login", json={"email": email, "password": "image test password"})
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert (await http.get("/api/users/me", headers=auth)).json()["email"] == email

        created = await http.post(
            "/api/vendors", json={"name": "Container Tacos", "category": "tacos"}, headers=auth
        )
        assert created.status_code == 201, created.text
        vendor = created.json()["id"]

        # vendor-management's outbox -> NATS -> search-discovery's read model.
        async def found_in_search() -> bool:
            hits = (await http.get("/api/search/vendors", params={"q": "Container Tacos"})).json()["items"]
            return vendor in {hit["id"] for hit in hits}

        await _eventually(found_in_search, "the vendor in search results")

        # real-time's WebSocket through the gateway too: one public address.
        ws_url = gateway.replace("http", "ws") + "/api/realtime/ws"
        async with connect(ws_url, compression=None) as ws:
            await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
            assert (await _frame(ws))["type"] == "ready"
            await ws.send(orjson.dumps({"type": "subscribe", "id": "v", "vendor_ids": [vendor]}).decode())
            assert (await _frame(ws, "subscribed", "error"))["type"] == "subscribed"

            # geolocation learns the vendor from NATS, then takes its position and publishes it.
            async def moved() -> bool:
                body = {"lat": BERLIN[0], "lon": BERLIN[1]}
                answer = await http.put(f"/api/locations/vendors/{vendor}", json=body, headers=auth)
                assert answer.status_code in (200, 404), answer.text
                return answer.status_code == 200

            await _eventually(moved, "geolocation accepting the vendor's position")
            update = await _frame(ws, "updates")
            assert [u["vendor_id"] for u in update["updates"]] == [vendor]

        near = await http.get(
            "/api/locations/nearby",
            params={"lat": BERLIN[0], "lon": BERLIN[1], "radius_m": 500},
            headers=auth,
        )
        assert vendor in {r["vendor_id"] for r in near.json()["results"]}, near.text

        # file-management writes to its volume as uid 10001 (the pod's fsGroup makes it writable).
        uploaded = await http.post("/api/files", files={"file": ("menu.png", PNG, "image/png")}, headers=auth)
        assert uploaded.status_code == 201, uploaded.text
        content = await http.get(f"/api/files/{uploaded.json()['id']}/content", headers=auth)
        assert content.status_code == 200 and content.content == PNG

        assert (await http.get("/api/webhooks/subscriptions", headers=auth)).json() == []
        assert (await http.get("/api/webhooks/dead-letters", headers=auth)).status_code == 200
        # real-time has no HTTP route there: its own 404 shows the gateway reached it (not a 502).
        realtime = await http.get("/api/realtime/ws", headers=auth)
        assert realtime.status_code == 404, realtime.text


async def _eventually(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout_s} s")
        await asyncio.sleep(0.2)


async def _frame(ws: Any, *kinds: str) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 15))
        if not kinds or frame["type"] in kinds:
            return frame
