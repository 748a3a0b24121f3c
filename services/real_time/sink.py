"""Sends text frames to one WebSocket, straight onto its socket when the server exposes it.

Through the ASGI interface a send costs several layers of Python per client (message dict, the
server's protocol object, frame assembly); at 200 clients and hundreds of updates a second that is
most of real-time's CPU. The frame of a server-to-client text message is only a short header before
the UTF-8 payload, so when the ASGI server's protocol object has an asyncio transport we write that
ourselves. Uncompressed frames are valid even when per-message compression was negotiated. Anything
else (no transport, another server) goes through ``send_text`` unchanged.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

# A client whose socket holds this much unsent data is not reading: it is dropped as too slow.
MAX_UNSENT_BYTES = 1024 * 1024


class SlowClient(Exception):
    pass


def text_frame(payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        header = bytes((0x81, n))
    elif n < 65536:
        header = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return header + payload


_TRANSPORT_KEY = "venta.ws_transport"


class ExposeTransport:
    """Outermost ASGI middleware: remembers the socket behind a WebSocket's ``send`` before the
    framework wraps it (uvicorn's ``send`` is a method of its protocol object, which holds it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if isinstance(transport, asyncio.Transport):
                scope[_TRANSPORT_KEY] = transport
        await self.app(scope, receive, send)


class FrameSink:
    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws
        self._transport: asyncio.Transport | None = ws.scope.get(_TRANSPORT_KEY)

    @property
    def direct(self) -> bool:
        return self._transport is not None

    async def send(self, payload: bytes) -> None:
        """Send one text message whose UTF-8 bytes are ``payload``."""
        transport = self._transport
        if transport is None:
            await self._ws.send_text(payload.decode())
            return
        if transport.is_closing():
            raise OSError("connection closed")
        if transport.get_write_buffer_size() > MAX_UNSENT_BYTES:
            raise SlowClient(f"more than {MAX_UNSENT_BYTES} bytes unsent")
        transport.write(text_frame(payload))
