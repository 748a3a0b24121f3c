"""Run an ASGI app with uvicorn inside the current event loop on a free loopback port.

Tests use it to reach a service over real HTTP (the gateway needs real upstreams); the app's lifespan
runs as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import uvicorn
from starlette.types import ASGIApp


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The test process keeps its own signal handlers (Ctrl-C stops pytest, not just this server).
        yield


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
    )
    server = _QuietServer(config)
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
