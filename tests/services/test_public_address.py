"""Every client path through one public address: all eight services run locally (``python -m
localdev``), and the tests below use the gateway's URL only (HTTP and the WebSocket).

- the journey of a customer and a vendor, 401/403 included;
- NUL in every string input of every service's OpenAPI schema (and of real-time's messages) is a
  422 naming the field (a close code naming it on the WebSocket), never a 500;
- every route, with and without a trailing slash, answers without naming an upstream host:port.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from localdev.serve import serving
from services.webhooks.signing import SIGNATURE_HEADER, verify
from tests.services.marketplace import bearer, eventually
from tests.services.platform import (
    Operation,
    Platform,
    example,
    local_platform,
    operations,
    schema_of,
    with_value,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
NUL_TEXT = "a\x00b"
WS_PATH = "/api/realtime/ws"


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    with local_platform() as running:
        yield running


class Client:
    """One user of the platform, who knows nothing but the gateway's address."""

    def __init__(self, http: httpx.AsyncClient, token: str, user_id: str) -> None:
        self.http, self.token, self.user_id = http, token, user_id

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.token)


async def sign_up(http: httpx.AsyncClient, role: str) -> Client:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    created = await http.post(
        "/api/users/register", json={"email": email, "password": "journey-pass", "role": role}
    )
    assert created.status_code == 201, created.text
    login = await http.post("/api/users/login", json={"email": email, "password": "journey-pass"})
    assert login.status_code == 200, login.text
    return Client(http, login.json()["access_token"], created.json()["id"])


async def ws_open(platform: Platform, token: str) -> ClientConnection:
    ws = await connect(platform.gateway.replace("http://", "ws://") + WS_PATH, compression=None)
    await ws.send(orjson.dumps({"type": "auth", "token": token}).decode())
    assert orjson.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "ready"
    return ws


async def ws_frame(ws: ClientConnection, kind: str) -> dict[str, Any]:
    while True:
        message = orjson.loads(await asyncio.wait_for(ws.recv(), 15))
        if message["type"] == "ping":
            await ws.send('{"type": "pong"}')
        elif message["type"] == kind:
            return dict(message)


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[tuple[str, asyncio.Queue[tuple[bytes, dict[str, str]]]]]:
    """A local HTTP endpoint that keeps what it is sent."""
    received: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> dict[str, str]:
        await received.put((await request.body(), dict(request.headers)))
        return {}

    async with serving(app) as url:
        yield f"{url}/hook", received


async def test_a_customer_and_a_vendor_use_every_service_through_the_gateway_alone(
    platform: Platform,
) -> None:
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=15) as http:
        vendor, customer = await sign_up(http, "vendor"), await sign_up(http, "customer")
        assert (await http.get("/api/users/me", headers=vendor.auth)).json()["id"] == vendor.user_id

        name = f"Journey Tacos {uuid.uuid4().hex[:6]}"
        made = await http.post("/api/vendors", json={"name": name, "category": "food"}, headers=vendor.auth)
        assert made.status_code == 201, made.text
        vendor_id = made.json()["id"]

        async def found_by_search() -> bool:
            hits = (await http.get("/api/search/vendors", params={"q": name})).json()["items"]
            return [hit["id"] for hit in hits] == [vendor_id]

        await eventually(found_by_search, within=30, what="search finding the new vendor")

        ws = await ws_open(platform, customer.token)
        await ws.send(orjson.dumps({"type": "subscribe", "id": "mine", "vendor_ids": [vendor_id]}).decode())
        await ws_frame(ws, "subscribed")
        spot = {"lat": 52.5163, "lon": 13.3777}

        async def position_accepted() -> bool:  # once geolocation has heard of the vendor
            moved = await http.put(f"/api/locations/vendors/{vendor_id}", json=spot, headers=vendor.auth)
            assert moved.status_code in (200, 404), moved.text
            return moved.status_code == 200

        await eventually(position_accepted, within=30, what="geolocation accepting the vendor's position")
        update = (await ws_frame(ws, "updates"))["updates"][0]
        assert update["vendor_id"] == vendor_id and update["lat"] == pytest.approx(spot["lat"])
        await ws.close()

        nearby = await http.get(
            "/api/locations/nearby", params={**spot, "radius_m": 500}, headers=customer.auth
        )
        assert vendor_id in [row["vendor_id"] for row in nearby.json()["results"]]

        async with webhook_receiver() as (hook_url, received):
            sub = await http.post(
                "/api/webhooks/subscriptions",
                json={"url": hook_url, "event_types": ["vendor.updated"]},
                headers=vendor.auth,
            )
            assert sub.status_code == 201, sub.text
            secret = sub.json()["secret"]
            renamed = await http.patch(
                f"/api/vendors/{vendor_id}", json={"name": name + " II"}, headers=vendor.auth
            )
            assert renamed.status_code == 200, renamed.text
            body, headers = await asyncio.wait_for(received.get(), 30)
        assert verify(secret, headers[SIGNATURE_HEADER.lower()], body, time.time())
        assert orjson.loads(body)["data"]["id"] == vendor_id

        upload = await http.post(
            "/api/files", files={"file": ("menu.png", PNG, "image/png")}, headers=vendor.auth
        )
        assert upload.status_code == 201, upload.text
        content_url = upload.json()["content_url"]
        download = await http.get(content_url, headers=customer.auth)
        assert download.content == PNG and download.headers["etag"] == f'"{hashlib.sha256(PNG).hexdigest()}"'
        again = await http.get(
            content_url, headers={**customer.auth, "If-None-Match": download.headers["etag"]}
        )
        assert again.status_code == 304 and again.content == b""

        # 401 without a token, at the edge; 403 for someone else's things, from the services.
        assert (await http.get("/api/users/me")).status_code == 401
        assert (await http.get(content_url)).status_code == 401
        not_a_vendor = await http.post(
            "/api/vendors", json={"name": "x", "category": "food"}, headers=customer.auth
        )
        assert not_a_vendor.status_code == 403
        assert (
            await http.patch(f"/api/vendors/{vendor_id}", json={"name": "y"}, headers=customer.auth)
        ).status_code == 403
        file_id = upload.json()["id"]
        assert (await http.delete(f"/api/files/{file_id}", headers=customer.auth)).status_code == 403
        not_owner = await http.put(f"/api/locations/vendors/{vendor_id}", json=spot, headers=customer.auth)
        assert not_owner.status_code == 403
        async with connect(platform.gateway.replace("http://", "ws://") + WS_PATH) as anonymous:
            await anonymous.send('{"type": "subscribe", "id": "x", "vendor_ids": ["v"]}')
            with pytest.raises(ConnectionClosed) as closed:
                await anonymous.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


# ---------------------------------------------------------------- NUL in every string input


def build_request(op: Operation, target: Any, value: str) -> dict[str, Any]:
    """Method, URL, query, headers and JSON body of ``op`` with ``value`` in ``target`` and an
    acceptable value everywhere else."""
    path, query, headers = op.path, {}, {}
    for param in op.parameters:
        is_target = target is not None and target.where == param["in"] and target.name == param["name"]
        given = value if is_target else example(param.get("schema", {}))
        if param["in"] == "path":
            path = path.replace("{" + param["name"] + "}", quote(str(given), safe=""))
        elif param["in"] == "query" and (param.get("required") or is_target):
            query[param["name"]] = given
        elif param["in"] == "header" and is_target:
            headers[param["name"]] = given
    request: dict[str, Any] = {"method": op.method, "url": path, "params": query, "headers": headers}
    if op.body is not None:
        document = example(op.body)
        if target is not None and target.where == "body":
            document = with_value(document, target.path, value)
        request["json"] = document
    return request


async def raw_status(gateway: str, method: str, path: str, headers: dict[str, str]) -> int:
    """Headers httpx refuses to send (a NUL in a value) written by hand; the status line's code."""
    where = urlsplit(gateway)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    head = f"{method} {path} HTTP/1.1\r\nHost: {where.netloc}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()
    )
    writer.write(head.encode("latin-1") + b"\r\n")
    status = int((await asyncio.wait_for(reader.readline(), 10)).split()[1])
    writer.close()
    return status


REAL_TIME_MESSAGES: list[tuple[dict[str, Any], list[str | int]]] = [
    ({"type": "auth", "token": "<token>"}, ["type"]),
    ({"type": "auth", "token": "<token>"}, ["token"]),
    ({"type": "subscribe", "id": "s", "vendor_ids": ["v"]}, ["type"]),
    ({"type": "subscribe", "id": "s", "vendor_ids": ["v"]}, ["id"]),
    ({"type": "subscribe", "id": "s", "vendor_ids": ["v"]}, ["vendor_ids", 0]),
    ({"type": "unsubscribe", "id": "s"}, ["type"]),
    ({"type": "unsubscribe", "id": "s"}, ["id"]),
    ({"type": "pong"}, ["type"]),
]


async def nul_over_the_websocket(
    platform: Platform, token: str, message: dict[str, Any], path: list[str | int]
) -> None:
    field = ".".join(map(str, path))
    url = platform.gateway.replace("http://", "ws://") + WS_PATH
    async with connect(url, compression=None) as ws:
        auth = {"type": "auth", "token": token}
        if message["type"] == "auth":
            await ws.send(orjson.dumps(with_value(auth, path, NUL_TEXT)).decode())
        else:
            await ws.send(orjson.dumps(auth).decode())
            await ws.send(orjson.dumps(with_value(message, path, NUL_TEXT)).decode())
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(10):
                await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None, field
    assert closed.value.rcvd.code == 1007 and closed.value.rcvd.reason.startswith(f"{field}: "), (
        closed.value.rcvd
    )


async def test_nul_in_every_string_input_of_every_service_is_refused_naming_the_field(
    platform: Platform,
) -> None:
    counts: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=15) as http:
        user = await sign_up(http, "vendor")
        for service, internal in platform.internal.items():
            if service == "api-gateway":
                continue
            tried = 0
            for op in operations(await schema_of(http, internal)):
                for target in op.string_fields():
                    request = build_request(op, target, NUL_TEXT)
                    if target.where == "header":
                        # No client library sends it; the HTTP parser refuses it before any app runs.
                        url = httpx.URL(request["url"], params=request["params"])
                        headers = {**user.auth, **request["headers"]}
                        status = await raw_status(platform.gateway, op.method, url.raw_path.decode(), headers)
                        assert status == 400, (service, op.method, op.path, target)
                    else:
                        request["headers"] |= user.auth
                        answer = await http.request(**request)
                        what = (service, op.method, op.path, target.where, target.name, answer.text)
                        assert answer.status_code == 422, what
                        assert answer.json()["fields"][0]["field"] == target.name, what
                    tried += 1
            counts[service] = tried
        # Stored strings that no JSON schema describes: an upload's file name, real-time's messages.
        # (Written by hand: httpx would send the NUL percent-encoded, which is text like any other.)
        multipart = (
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\x00b.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + PNG + b"\r\n--b--\r\n"
        )
        upload = await http.post(
            "/api/files",
            content=multipart,
            headers={**user.auth, "Content-Type": "multipart/form-data; boundary=b"},
        )
        assert upload.status_code == 422 and upload.json()["detail"].startswith("filename: ")
        counts["file-management"] += 1
        for message, path in REAL_TIME_MESSAGES:
            await nul_over_the_websocket(platform, user.token, message, path)
        counts["real-time"] += len(REAL_TIME_MESSAGES)
    counts["api-gateway"] = sum(counts.values())  # every one of them went through it
    print("\nNUL inputs tried per service (422 or 1007 each, header values 400):")
    for service, tried in sorted(counts.items()):
        print(f"  {service:<20} {tried}")
    assert all(counts.values()), counts
    assert len(counts) == 8


# ---------------------------------------------------------------- no upstream address in any response


async def test_every_route_with_and_without_a_trailing_slash_names_no_upstream(platform: Platform) -> None:
    hosts = platform.upstream_hosts()
    sent = 0
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=15) as http:
        user = await sign_up(http, "vendor")
        for service, internal in platform.internal.items():
            if service == "api-gateway":
                continue
            for op in operations(await schema_of(http, internal)):
                for slash in ("", "/"):
                    request = build_request(op, None, "")
                    request["url"] += slash
                    request["headers"] |= user.auth
                    answer = await http.request(**request)
                    sent += 1
                    what = (op.method, request["url"], answer.status_code)
                    assert answer.status_code < 500 and not 300 <= answer.status_code < 400, what
                    for name, value in answer.headers.items():
                        assert not any(host in value for host in hosts), (*what, name, value)
        for prefix in ("users", "vendors", "search", "locations", "realtime", "webhooks", "files"):
            for path in (f"/api/{prefix}", f"/api/{prefix}/"):
                answer = await http.get(path, headers=user.auth)
                sent += 1
                assert not any(host in value for value in answer.headers.values() for host in hosts), path
    print(f"\n{sent} requests through the gateway, none naming one of {len(hosts)} upstream addresses")
