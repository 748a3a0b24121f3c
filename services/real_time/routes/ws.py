"""/api/realtime/ws: the WebSocket endpoint (protocol in services.real_time.connection)."""

from __future__ import annotations

import contextlib

from fastapi import APIRouter, WebSocket

from services.real_time.connection import serve_client
from services.real_time.metrics import CLIENTS, CLOSED

router = APIRouter(prefix="/api/realtime", tags=["realtime"])


@router.websocket("/ws")
async def updates(ws: WebSocket) -> None:
    state = ws.app.state
    await ws.accept()
    CLIENTS.inc()
    try:
        closing = await serve_client(ws, state.hub, state.resources.verifier, state.timing)
    finally:
        CLIENTS.dec()
    if closing is not None:
        code, reason = closing
        CLOSED.labels(code=str(code)).inc()
        with contextlib.suppress(RuntimeError, OSError):  # already gone
            await ws.close(code, reason)
