"""One WebSocket client: authenticate, then a reader (client messages) and a writer (everything sent).

Protocol (JSON text frames):
- client -> server: ``{"type": "auth", "token": ...}`` first (unless the handshake carried
  ``Authorization: Bearer``), then ``{"type": "subscribe", "id", "area"?, "vendor_ids"?}``,
  ``{"type": "unsubscribe", "id"}``, ``{"type": "pong"}``.
- server -> client: ``ready``, ``subscribed``, ``unsubscribed``, ``error`` (bad message, connection
  stays open), ``ping`` (every heartbeat), ``updates`` (``{"updates": [...]}``, one or more).

Close codes: 1007 a string holds a NUL (the reason names the field); 1008 authentication failed,
token expired or a limit exceeded (the reason says which); 1013 client too slow (its outbox
overflowed or a send timed out); 4408 heartbeat missed.
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
from services.common.inputs import NUL_REASON, find_nul
from services.real_time.hub import Client, Hub, updates_frame
from services.real_time.subscriptions import LimitExceeded, ProtocolError, parse_subscription

INVALID_DATA = 1007
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

    @property
    def tick_s(self) -> float:
        """How often the supervisor looks at every connection."""
        return min(1.0, self.heartbeat_s / 2)


def _frame(kind: str, **fields: Any) -> str:
    return orjson.dumps({"type": kind, **fields}).decode()


def nul_close(message: Any) -> Close | None:
    """The close for a message with a NUL in any string (what no store downstream could hold)."""
    field = find_nul(message)
    return None if field is None else (INVALID_DATA, f"{field or 'message'}: {NUL_REASON}")


async def authenticate(ws: WebSocket, verifier: TokenVerifier, timing: Timing) -> Principal | Close:
    header = ws.headers.get("authorization")
    try:
        if header:
            return verifier.verify(bearer_token(header))
        async with asyncio.timeout(timing.auth_s):
            message = orjson.loads(await ws.receive_text())
        if (refused := nul_close(message)) is not None:
            return refused
        if not isinstance(message, dict) or message.get("type") != "auth" or not message.get("token"):
            return POLICY, 'authentication required: send {"type": "auth", "token": ...} first'
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
        if (refused := nul_close(message)) is not None:
            return refused
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


async def read_loop(ws: WebSocket, hub: Hub, client: Client) -> Close | None:
    while True:
        try:
            text = await ws.receive_text()
        except (WebSocketDisconnect, RuntimeError, KeyError):
            return None  # the client went away
        client.last_heard = time.monotonic()
        closing = handle_message(hub, client, text)
        if closing is not None:
            return closing


async def write_loop(ws: WebSocket, client: Client) -> Close | None:
    """The connection's only sender: replies first, then every pending update in one frame."""
    try:
        while True:
            await client.outbox.wait()
            if client.outbox.overflowed:
                return TOO_SLOW, "client too slow: its pending updates exceeded the outbox limit"
            client.sending_since = time.monotonic()
            for control in client.outbox.take_control():
                await ws.send_text(control)
            parts = client.outbox.take()
            if parts:
                await ws.send_text(updates_frame(parts))
            client.sending_since = None
    except (WebSocketDisconnect, RuntimeError, OSError):
        return None


async def supervise(hub: Hub, timing: Timing) -> None:
    """One loop for all connections: heartbeats, token expiry, silent and stuck clients.

    Timers per connection (or per send) would cost more than the sends themselves at high fan-out.
    """
    while True:
        await asyncio.sleep(timing.tick_s)
        now, wall = time.monotonic(), time.time()
        for client in list(hub.clients):
            if wall >= client.expires_at:
                client.close(POLICY, "token expired")
            elif client.sending_since is not None and now - client.sending_since > timing.send_s:
                client.close(TOO_SLOW, f"client too slow: a send took over {timing.send_s:g} s")
            elif now - client.last_heard > timing.idle_s:
                client.close(HEARTBEAT_MISSED, f"no message or pong for {timing.idle_s:g} s")
            elif now >= client.next_ping:
                client.outbox.put_control(_frame("ping", ts=wall))
                client.next_ping = now + timing.heartbeat_s


async def serve_client(ws: WebSocket, hub: Hub, verifier: TokenVerifier, timing: Timing) -> Close | None:
    """Run one connection to its end; returns the close code and reason (None: the client left)."""
    identity = await authenticate(ws, verifier, timing)
    if not isinstance(identity, Principal):
        return identity
    client = hub.connect(identity.user_id, identity.expires_at)
    client.next_ping = time.monotonic() + timing.heartbeat_s
    client.outbox.put_control(_frame("ready", user_id=identity.user_id))
    tasks = [
        asyncio.create_task(read_loop(ws, hub, client)),
        asyncio.create_task(write_loop(ws, client)),
    ]
    try:
        waiters: list[asyncio.Future[Close | None]] = [*tasks, client.closing]
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        return next(iter(done)).result()
    finally:
        hub.disconnect(client)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
