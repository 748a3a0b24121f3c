"""The load side of the fan-out benchmarks: a minimal WebSocket client, and client processes.

200 clients of a full-featured library would cost more CPU than the server they measure, so the
client here does only what the benchmark needs (text frames, no extensions). The 2,000-client case
spreads its clients over several processes (``city_clients``), each reporting what every client
received and how late, so the load side is not what limits the figures.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import orjson

_DECODED: dict[bytes, Any] = {}


class WsClient(asyncio.Protocol):
    """A minimal WebSocket client (text frames, no extensions): the load side must stay cheaper than
    the server it measures, and 200 clients of a full-featured library would not."""

    def __init__(self, on_updates: Callable[[list[dict[str, object]]], None]) -> None:
        self.on_updates = on_updates
        self.buf = bytearray()
        self.open = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.messages: asyncio.Queue[dict[str, object]] = asyncio.Queue()
        self.transport: asyncio.Transport | None = None
        self.close_code: int | None = None  # from the server's close frame
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True

    def send_text(self, text: str) -> None:
        payload, mask = text.encode(), os.urandom(4)
        n = len(payload)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert self.transport is not None
        self.transport.write(head + mask + masked)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.open:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in self.buf[:end]:
                self.opened.set_exception(RuntimeError(self.buf[:end].decode(errors="replace")))
                return
            del self.buf[: end + 4]
            self.open = True
            self.opened.set_result(None)
        while len(self.buf) >= 2:
            opcode, length, pos = self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
            if length == 126:
                if len(self.buf) < 4:
                    return
                length, pos = int.from_bytes(self.buf[2:4], "big"), 4
            elif length == 127:
                if len(self.buf) < 10:
                    return
                length, pos = int.from_bytes(self.buf[2:10], "big"), 10
            if len(self.buf) < pos + length:
                return
            payload = bytes(self.buf[pos : pos + length])
            del self.buf[: pos + length]
            if opcode == 1:
                self._text(payload)
            elif opcode == 8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005

    def _text(self, payload: bytes) -> None:
        # Most clients receive byte-identical frames: decode each distinct frame once.
        message = _DECODED.get(payload)
        if message is None:
            if len(_DECODED) > 4096:
                _DECODED.clear()
            message = _DECODED[payload] = orjson.loads(payload)
        if message["type"] == "updates":
            self.on_updates(message["updates"])
        elif message["type"] == "ping":
            self.send_text('{"type": "pong"}')
        else:
            self.messages.put_nowait(message)


async def ws_connect(
    port: int, token: str, on_updates: Callable[[list[dict[str, object]]], None], area: dict[str, object]
) -> WsClient:
    """A client connected to ``port`` (real-time, or the gateway), authenticated by its first message
    and subscribed to ``area``."""
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(lambda: WsClient(on_updates), "127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    assert client.transport is not None
    client.transport.write(
        (
            f"GET /api/realtime/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await asyncio.wait_for(client.opened, 10)
    client.send_text(orjson.dumps({"type": "auth", "token": token}).decode())
    assert (await asyncio.wait_for(client.messages.get(), 10))["type"] == "ready"
    client.send_text(orjson.dumps({"type": "subscribe", "id": "all", "area": area}).decode())
    assert (await asyncio.wait_for(client.messages.get(), 10))["type"] == "subscribed"
    return client


def city_clients(
    pipe: Connection, port: int, tokens: list[str], circles: list[tuple[float, float, float]]
) -> None:
    """A client process of the 2,000-client case: connects one client per token, each subscribed to
    its circle (lat, lon, radius_m); sends ``("ready", connected)`` on the pipe, answers ``"count"``
    with the updates received so far, and on ``"stop"`` sends ``(received vendor ids per client,
    latencies in s, frames, CPU s, close codes of clients the server closed)``. Updates of vendors
    whose id starts with ``warm`` are not recorded."""
    os.sched_setaffinity(0, os.sched_getaffinity(0))  # as the parent placed it
    asyncio.run(_city_clients(pipe, port, tokens, circles))


async def _city_clients(
    pipe: Connection, port: int, tokens: list[str], circles: list[tuple[float, float, float]]
) -> None:
    received: list[list[str]] = [[] for _ in tokens]
    latencies: list[float] = []
    frames = 0

    def on_updates_for(index: int) -> Callable[[list[dict[str, object]]], None]:
        got = received[index]

        def on_updates(updates: list[dict[str, object]]) -> None:
            nonlocal frames
            now = time.time()
            frames += 1
            for update in updates:
                vendor = str(update["vendor_id"])
                if not vendor.startswith("warm"):
                    got.append(vendor)
                    latencies.append(now - float(update["accepted_at"]))  # type: ignore[arg-type]

        return on_updates

    clients: list[WsClient] = []
    gate = asyncio.Semaphore(16)  # handshakes in flight per process

    async def connect(index: int) -> None:
        lat, lon, radius = circles[index]
        area: dict[str, object] = {"circle": {"lat": lat, "lon": lon, "radius_m": radius}}
        async with gate:
            clients.append(await ws_connect(port, tokens[index], on_updates_for(index), area))

    await asyncio.gather(*(connect(i) for i in range(len(tokens))))
    pipe.send(("ready", len(clients)))
    loop = asyncio.get_running_loop()
    while (command := await loop.run_in_executor(None, pipe.recv)) == "count":
        pipe.send(len(latencies))
    assert command == "stop"
    closed = [c.close_code or 1006 for c in clients if c.lost or c.close_code is not None]
    pipe.send((received, latencies, frames, time.process_time(), closed))
    for client in clients:
        if client.transport is not None:
            client.transport.close()
