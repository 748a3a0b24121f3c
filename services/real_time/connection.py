"""One WebSocket client: authenticate, then a reader (client messages) and a writer (everything sent).

Protocol (JSON text frames):
- client -> server: ``{"type": "auth", "token": ...}`` first (unless the handshake carried
  ``Authorization: Bearer``), then ``{"type": "subscribe", "id", "area"?, "vendor_ids"?}``,
  ``{"type": "unsubscribe", "id"}``, ``{"type": "pong"}``.
- server -> client: ``ready``, ``subscribed``, ``unsubscribed``, ``error`` (bad message, connection
  stays open), ``ping`` (every heartbeat), ``updates`` (``{"updates": [...]}``, one or more).

Close codes: 1008 authentication failed, token expired or a limit exceeded (the reason says which);
1013 client too slow (its outbox overflowed or a send timed out); 4408 heartbeat missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from services.common.auth import InvalidToken, Principal, TokenVerifier, bearer_token
from services.real_time.hub import Client, Hub, updates_frame
from services.real_time.subscriptions import LimitExceeded, ProtocolError, parse_subscription

POLICY = 1008
TOO_SLOW = 1013
HEARTBEAT_MISSED = 4408
Close = tuple[int, str]


@dataclass(frozen=True)
class Timing:
    heartbeat_s: float
    idle_s: float
    auth_s: float
    send_s: float


def _frame(kind: str, **fields: Any) -> str:
    return orjson.dumps({"type": kind, **fields}).decode()


async def authenticate(ws: WebSocket, verifier: TokenVerifier, timing: Timing) -> Principal | Close:
    header = ws.headers.get("authorization")
    try:
        if header:
            return verifier.verify(bearer_token(header))
        async with asyncio.timeout(timing.auth_s):
            message = orjson.loads(await ws.receive_text())
        if not isinstance(message, dict) or message.get("type") != "auth" or not message.get("token"):
            return POLICY, "authentication required: send {\"type\": \"auth\", \"token\": ...} first"
        return verifier.verify(str(message["token"]))
    except InvalidToken as exc:
        return POLICY, f"authentication failed: {exc}"
    except TimeoutError:
        return POLICY, "authentication required within the time limit"
    except orjson.JSONDecodeError:
        return POLICY, "authentication required: the first message must be JSON"


def handle_message(hub: Hub, client: Client, text: str) -> Close | None:
    """Apply one client message; protocol errors are answered, limits close the connection."""
    try:
        message = orjson.loads(text)
        if not isinstance(message, dict):
            raise ProtocolError("messages are JSON objects")
        kind = message.get("type")
        if kind == "subscribe":
            sub = parse_subscription(message, hub.limits)
            hub.subscribe(client, sub)
            client.outbox.put_control(_frame("subscribed", id=sub.id))
        elif kind == "unsubscribe":
            removed = hub.unsubscribe(client, str(message.get("id")))
            client.outbox.put_control(_frame("unsubscribed", id=message.get("id"), found=removed))
        elif kind not in ("pong", "auth"):
            raise ProtocolError(f"unknown message type {kind!r}")
    except orjson.JSONDecodeError:
        client.outbox.put_control(_frame("error", reason="message is not JSON"))
    except ProtocolError as exc:
        client.outbox.put_control(_frame("error", reason=str(exc)))
    except LimitExceeded as exc:
        return POLICY, f"subscription limit exceeded: {exc}"
    return None


async def read_loop(ws: WebSocket, hub: Hub, client: Client, timing: Timing) -> Close | None:
    while True:
        try:
            async with asyncio.timeout(timing.idle_s):
                text = await ws.receive_text()
        except TimeoutError:
            return HEARTBEAT_MISSED, f"no message or pong for {timing.idle_s:g} s"
        except (WebSocketDisconnect, RuntimeError, KeyError):
            return None  # the client went away
        closing = handle_message(hub, client, text)
        if closing is not None:
            return closing


async def write_loop(ws: WebSocket, client: Client, timing: Timing, expires_at: float) -> Close | None:
    next_ping = time.monotonic() + timing.heartbeat_s
    try:
        while True:
            await client.outbox.wait(max(0.0, min(next_ping - time.monotonic(), expires_at - time.time())))
            if time.time() >= expires_at:
                return POLICY, "token expired"
            if client.outbox.overflowed:
                return TOO_SLOW, "client too slow: its pending updates exceeded the outbox limit"
            async with asyncio.timeout(timing.send_s):
                for control in client.outbox.take_control():
                    await ws.send_text(control)
                parts = client.outbox.take()
                if parts:
                    await ws.send_text(updates_frame(parts))
                if time.monotonic() >= next_ping:
                    await ws.send_text(_frame("ping", ts=time.time()))
                    next_ping = time.monotonic() + timing.heartbeat_s
    except TimeoutError:
        return TOO_SLOW, f"client too slow: a send took over {timing.send_s:g} s"
    except (WebSocketDisconnect, RuntimeError, OSError):
        return None


async def serve_client(ws: WebSocket, hub: Hub, verifier: TokenVerifier, timing: Timing) -> Close | None:
    """Run one connection to its end; returns the close code and reason (None: the client left)."""
    identity = await authenticate(ws, verifier, timing)
    if not isinstance(identity, Principal):
        return identity
    client = hub.connect(identity.user_id)
    client.outbox.put_control(_frame("ready", user_id=identity.user_id))
    tasks = [
        asyncio.create_task(read_loop(ws, hub, client, timing)),
        asyncio.create_task(write_loop(ws, client, timing, identity.expires_at)),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return next(iter(done)).result()
    finally:
        hub.disconnect(client)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
