"""What the webhooks tests share: the service on real PostgreSQL and NATS, local receivers, events.

The fixtures ``start_hooks`` and ``receiver`` are imported by the test modules that use them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from aiohttp import web

from localdev.servers import free_port
from services.common.auth import TokenIssuer
from services.common.nats_client import new_event, publish_event
from services.webhooks.app import create_app
from services.webhooks.settings import Settings
from services.webhooks.signing import verify

# Short backoff keeps the suite fast; loopback targets are allowed explicitly (the local receiver).
FAST = {
    "webhook_backoff_base_seconds": 0.05,
    "webhook_backoff_cap_seconds": 0.3,
    "webhook_poll_seconds": 0.05,
    "webhook_timeout_seconds": 2.0,
    "webhook_allow_private_targets": True,
    "nats_reconnect_wait_seconds": 0.2,
    "nats_max_reconnect_attempts": -1,
}


class Receiver:
    """A local HTTP endpoint that can be down (not listening), failing (HTTP 500), holding every request
    until released (a receiver that hangs), or answering with a body of its choice; then healthy."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.failing = False
        self.failures = 0  # requests answered 500
        self.hold: asyncio.Event | None = None  # set: requests wait for it before they are answered
        self.active = self.peak = 0  # requests being answered now, and the most at once
        self.answer = b""
        self.answer_headers: dict[str, str] = {}
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        if self.failing:
            self.failures += 1
            return web.Response(status=500)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            body = await request.read()
            if self.hold is not None:
                await self.hold.wait()
            self.received.append((dict(request.headers), body))
        finally:
            self.active -= 1
        if self.answer:
            return web.Response(status=200, body=self.answer, headers=self.answer_headers)
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def event_ids(self, secret: str) -> list[str]:
        """Ids of the received events, after checking each one's signature and idempotency key."""
        ids = []
        for headers, body in self.received:
            assert verify(secret, headers["X-Venta-Signature"], body, now=time.time()), "bad signature"
            event = orjson.loads(body)
            assert headers["Idempotency-Key"] == event["id"] == headers["X-Venta-Event-Id"]
            assert headers["X-Venta-Event-Type"] == event["type"]
            ids.append(event["id"])
        return ids


class Hooks:
    def __init__(self, http: httpx.AsyncClient, issuer: TokenIssuer, nats_url: str, db_url: str) -> None:
        self.http, self.issuer, self.nats_url, self.db_url = http, issuer, nats_url, db_url

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.issue(user, 'customer')}"}

    async def subscribe(
        self, user: str, url: str, types: list[str], vendor_ids: list[str] | None = None
    ) -> dict[str, Any]:
        resp = await self.try_subscribe(user, url, types, vendor_ids)
        assert resp.status_code == 201, resp.text
        return resp.json()

    async def try_subscribe(
        self, user: str, url: str, types: list[str], vendor_ids: list[str] | None = None
    ) -> httpx.Response:
        body: dict[str, Any] = {"url": url, "event_types": types}
        if vendor_ids is not None:
            body["vendor_ids"] = vendor_ids
        return await self.http.post("/api/webhooks/subscriptions", json=body, headers=self.auth(user))

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.db_url)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    async def deliveries(self, user: str, sub_id: str, status: str | None = None) -> list[dict[str, Any]]:
        params = {"status": status} if status else {}
        resp = await self.http.get(
            f"/api/webhooks/subscriptions/{sub_id}/deliveries", params=params, headers=self.auth(user)
        )
        assert resp.status_code == 200, resp.text
        return resp.json()

    async def wait_for(self, check: Callable[[], Awaitable[bool]], what: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await check():
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")


async def publish(
    js: Any, count: int, subject: str = "vendor.created", owner: str = "alice", vendor_id: str | None = None
) -> list[str]:
    """``count`` events as vendor-management and geolocation publish them: vendor events of new
    vendors of ``owner`` (or of ``vendor_id``), positions of ``vendor_id``. Returns the event ids."""
    ids = []
    for i in range(count):
        if subject == "location.updated":
            assert vendor_id is not None, "a position is always some known vendor's"
            data: dict[str, Any] = {"vendor_id": vendor_id, "lat": 1.0, "lon": 2.0 + i, "accuracy_m": None}
        else:
            data = {"id": vendor_id or str(uuid.uuid4()), "owner_id": owner, "seq": i}
        event = new_event(subject, data)
        for tries_left in range(50, -1, -1):  # as any producer would: retry until JetStream acks
            try:
                await publish_event(js, event, timeout=1.0)
                break
            except Exception:
                if not tries_left:
                    raise
                await asyncio.sleep(0.1)
        ids.append(event["id"])
    return ids


@pytest.fixture
async def start_hooks(
    new_database: Callable[[], Awaitable[str]],
    public_pem: str,
    signing_seed: str,
    serve: Callable[[Any], Awaitable[str]],
) -> AsyncIterator[Callable[..., Awaitable[Hooks]]]:
    clients: list[httpx.AsyncClient] = []

    async def start(nats_url: str, **overrides: Any) -> Hooks:
        url = await new_database()
        settings = Settings(
            database_url=url, nats_servers=[nats_url], jwt_public_key=public_pem, **{**FAST, **overrides}
        )
        http = httpx.AsyncClient(base_url=await serve(create_app(settings)), timeout=10)
        clients.append(http)
        return Hooks(http, TokenIssuer(signing_seed, 900), nats_url, url)

    yield start
    for http in clients:
        await http.aclose()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    yield rec
    await rec.stop()
