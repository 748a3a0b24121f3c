"""Run an ASGI app with uvicorn inside the current event loop on a free loopback port.

Tests use it to reach a service over real HTTP (the gateway needs real upstreams); the app's lifespan
runs as in production. A service's probes and metrics are on its internal app: serve
``app.state.internal_app`` too (after the app, whose lifespan opens what the probes check).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn
from starlette.types import ASGIApp

from services.common.server import QuietServer

# uvicorn's own default, for apps without the shared settings.
_WS_MAX_SIZE = 16 * 1024 * 1024


def _ws_limit(app: ASGIApp) -> int:
    """The service's own WebSocket message limit, as ``python -m services`` would set it."""
    settings = getattr(getattr(app, "state", None), "settings", None)
    limit = getattr(settings, "ws_max_message_bytes", None)
    return limit if isinstance(limit, int) else _WS_MAX_SIZE


@contextlib.asynccontextmanager
async def serving(app: ASGIApp, port: int = 0, graceful_seconds: int = 5) -> AsyncIterator[str]:
    """Yield the base URL while ``app`` serves; shut it down (lifespan included) on exit."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=graceful_seconds,
        timeout_keep_alive=30,
        # As python -m services: the scope's client is the peer (uvicorn would otherwise believe
        # X-Forwarded-For from loopback, which is where every test client connects from).
        proxy_headers=False,
        ws_per_message_deflate=False,
        ws_max_size=_ws_limit(app),
    )
    # The test process keeps its own signal handlers (Ctrl-C stops pytest, not just this server).
    server = QuietServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # re-raises a start-up failure
            raise RuntimeError("server stopped during start-up (see the log for the lifespan error)")
        await asyncio.sleep(0.01)
    sock = server.servers[0].sockets[0]
    bound_port = sock.getsockname()[1]
    try:
        yield f"http://127.0.0.1:{bound_port}"
    finally:
        server.should_exit = True
        await task
