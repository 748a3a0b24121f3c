"""Bodies through api-gateway: streamed both ways (never held whole), and a request body that is too
large, too slow or one too many for its client is cut at the edge, which the service sees."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from fastapi import FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from starlette.requests import ClientDisconnect

from services.api_gateway.app import create_app as create_gateway
from tests.services.marketplace import Servers, bearer, eventually

MIB = 1024 * 1024
CHUNK = b"v" * (64 * 1024)


@dataclass
class Seen:
    """What the upstream stand-in saw of each upload, as it happened."""

    received: int = 0
    outcomes: list[tuple[str, int]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


def stand_in(seen: Seen) -> FastAPI:
    """file-management's place: counts an upload's bytes as they arrive, streams a large answer."""
    app = FastAPI()

    @app.post("/api/files/upload")
    async def upload(request: Request) -> Response:
        digest, size = hashlib.sha256(), 0
        try:
            async for chunk in request.stream():
                digest.update(chunk)
                size += len(chunk)
                seen.received = size
        except ClientDisconnect:
            seen.outcomes.append(("cut", size))
            return Response(status_code=400)
        seen.outcomes.append(("complete", size))
        body = {"bytes": size, "sha256": digest.hexdigest(), "length": request.headers.get("content-length")}
        return Response(orjson.dumps(body), media_type="application/json")

    @app.get("/api/files/big")
    async def big() -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            yield CHUNK
            await seen.release.wait()  # the rest only once the client has had the first part
            for _ in range(47):
                yield CHUNK

        return StreamingResponse(parts(), media_type="application/octet-stream")

    return app


async def start(servers: Servers, serve: Any, seen: Seen, **gateway: Any) -> str:
    upstream = await serve(stand_in(seen))
    return str(
        await serve(create_gateway(servers.gateway_settings({"file-management": upstream}, **gateway)))
    )


class RawUpload:
    """An upload written by hand, so a test decides when (and whether) each byte goes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str, token: str, declared: int | None, first: bytes) -> RawUpload:
        where = urlsplit(url)
        reader, writer = await asyncio.open_connection(where.hostname, where.port)
        length = f"Content-Length: {declared}" if declared is not None else "Transfer-Encoding: chunked"
        head = (
            f"POST /api/files/upload HTTP/1.1\r\nHost: {where.netloc}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/octet-stream\r\n{length}\r\n\r\n"
        )
        upload = cls(reader, writer)
        writer.write(head.encode())
        await upload.send(first)
        return upload

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self, within: float = 10) -> tuple[int, dict[str, Any]]:
        async with asyncio.timeout(within):
            status_line = await self.reader.readline()
            headers: dict[str, str] = {}
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.lower()] = value.strip()
            body = await self.reader.readexactly(int(headers["content-length"]))
        return int(status_line.split()[1]), orjson.loads(body)

    def close(self) -> None:
        self.writer.close()


async def test_request_and_response_bodies_stream_through(servers: Servers, serve: Any) -> None:
    seen = Seen()
    url = await start(servers, serve, seen)
    token = servers.issuer().issue("uploader", "vendor")
    body = CHUNK * 32  # 2 MiB
    upload = await RawUpload.open(url, token, len(body), body[:MIB])

    async def upstream_has_half() -> bool:
        return seen.received >= MIB // 2

    # Half of it reaches the service while the client has not sent the rest: nothing waits for all.
    await eventually(upstream_has_half, what="the first half reaching the service")
    await upload.send(body[MIB:])
    status, answer = await upload.answer()
    upload.close()
    assert status == 200
    assert answer == {
        "bytes": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "length": str(len(body)),
    }

    async with httpx.AsyncClient(base_url=url, timeout=10) as gw:
        async with gw.stream("GET", "/api/files/big", headers=bearer(token)) as response:
            parts = response.aiter_raw()
            first = await anext(parts)  # arrives while the service still holds back the rest
            seen.release.set()
            rest = b"".join([part async for part in parts])
        assert len(first) + len(rest) == 48 * len(CHUNK)
        assert response.headers.get("transfer-encoding") == "chunked"


async def test_a_stalled_or_endless_upload_is_cut_with_408_and_the_service_keeps_nothing(
    servers: Servers, serve: Any
) -> None:
    seen = Seen()
    url = await start(
        servers,
        serve,
        seen,
        body_min_rate_bytes_per_second=1024,
        body_rate_window_seconds=0.5,
        body_timeout_seconds=1.5,
    )
    token = servers.issuer().issue("slow", "vendor")
    started = time.monotonic()
    stalled = await RawUpload.open(url, token, MIB, CHUNK)  # 64 KiB of 1 MiB, then nothing
    status, answer = await stalled.answer()
    assert status == 408 and "slower than 1024 bytes/s over 0.5 s" in answer["detail"]
    assert time.monotonic() - started < 3
    stalled.close()

    async def service_saw_the_cut() -> bool:
        return seen.outcomes == [("cut", len(CHUNK))]

    await eventually(service_saw_the_cut, what="the service seeing the upload cut off")
    # Fast enough for the rate, never finished: the deadline ends it.
    trickle = await RawUpload.open(url, token, MIB, b"x" * 2048)
    started = time.monotonic()
    status = 0
    while status == 0:
        try:
            await trickle.send(b"x" * 2048)
            status, answer = await trickle.answer(within=0.1)
        except TimeoutError:
            continue
        except ConnectionError:
            status, answer = await trickle.answer()
    assert status == 408 and answer["detail"] == "request body not complete within 1.5 s"
    assert 1.2 < time.monotonic() - started < 4
    trickle.close()


async def test_each_client_has_a_bounded_number_of_bodies_in_flight(servers: Servers, serve: Any) -> None:
    seen = Seen()
    url = await start(servers, serve, seen, body_max_in_flight_per_client=2)
    ann, bob = servers.issuer().issue("ann", "vendor"), servers.issuer().issue("bob", "vendor")
    held = [await RawUpload.open(url, ann, MIB, CHUNK) for _ in range(2)]

    async def both_reached_the_service() -> bool:
        return seen.received > 0 and len(seen.outcomes) == 0

    await eventually(both_reached_the_service, what="the held uploads under way")
    async with httpx.AsyncClient(base_url=url, timeout=10) as gw:
        third = await gw.post("/api/files/upload", content=b"small", headers=bearer(ann))
        assert third.status_code == 429 and "more than 2 request bodies in flight" in third.json()["detail"]
        assert third.headers["retry-after"] == "1"
        other = await gw.post("/api/files/upload", content=b"small", headers=bearer(bob))
        assert other.status_code == 200  # the cap is per client
        for upload in held:
            upload.close()

        async def freed() -> bool:
            return len(seen.outcomes) == 3

        await eventually(freed, what="the held uploads ending")
        assert (await gw.post("/api/files/upload", content=b"again", headers=bearer(ann))).status_code == 200


async def test_too_large_bodies_are_refused_declared_or_streamed(servers: Servers, serve: Any) -> None:
    seen = Seen()
    url = await start(servers, serve, seen, upload_max_bytes=256 * 1024)
    token = servers.issuer().issue("big", "vendor")
    declared = await RawUpload.open(url, token, MIB, b"")
    status, answer = await declared.answer()
    assert status == 413 and "262144 bytes" in answer["detail"]
    declared.close()
    assert seen.outcomes == []  # refused before the service was asked
    chunked = await RawUpload.open(url, token, None, b"")
    # 5 x 64 KiB in chunked framing, no length announced: over the limit on the fifth. (A client that
    # kept sending after the answer could see its connection reset instead: the gateway reads no more.)
    for _ in range(5):
        await chunked.send(f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n")
    status, answer = await chunked.answer()
    assert status == 413
    chunked.close()

    async def cut() -> bool:
        return len(seen.outcomes) == 1 and seen.outcomes[0][0] == "cut"

    await eventually(cut, what="the service seeing the oversized upload cut off")
