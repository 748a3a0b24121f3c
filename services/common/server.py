"""One service process: the public app on ``PORT`` and the internal app on ``INTERNAL_PORT``.

Both are uvicorn servers in one event loop (uvloop + httptools). The public server owns the lifespan
and the signals: on SIGTERM it drains for ``SHUTDOWN_DRAIN_SECONDS`` (services/common/drain.py), stops
accepting, lets in-flight requests finish (up to ``SHUTDOWN_GRACE_SECONDS``) and runs the lifespan
shutdown. The internal server starts once the lifespan has opened every client (so a probe never sees
a half-started service) and answers probes until the process ends, the drain's 503 included.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from services.common.drain import DrainingServer
from services.common.settings import ServiceSettings


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to someone else (the public server, or pytest)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def server_config(app: FastAPI, settings: ServiceSettings, *, internal: bool) -> uvicorn.Config:
    return uvicorn.Config(
        app.state.internal_app if internal else app,
        host=settings.host,
        port=settings.internal_port if internal else settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="off" if internal else "on",
        log_config=None,
        access_log=False,
        server_header=False,
        # Identity and client addresses come from tokens and the gateway's X-Forwarded-For, not from
        # uvicorn rewriting the scope on every request.
        proxy_headers=False,
        # Longer than the gateway's pooled keep-alive, so the gateway closes idle connections first.
        timeout_keep_alive=30,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        # real-time encodes each update once for all its clients; per-connection compression would
        # redo that work for every client and about double its CPU.
        ws_per_message_deflate=False,
        ws_max_size=settings.ws_max_message_bytes,
    )


async def serve(app: FastAPI, settings: ServiceSettings) -> None:
    health = app.state.health
    public = DrainingServer(
        server_config(app, settings, internal=False), settings.shutdown_drain_seconds, health.start_draining
    )
    internal = QuietServer(server_config(app, settings, internal=True))
    public_task = asyncio.create_task(public.serve())
    while not public.started:
        if public_task.done():
            await public_task  # start-up failed: uvicorn has logged why
            return
        await asyncio.sleep(0.02)
    internal_task = asyncio.create_task(internal.serve())
    done, _ = await asyncio.wait({public_task, internal_task}, return_when=asyncio.FIRST_COMPLETED)
    if internal_task in done:  # the internal port could not be bound: stop the service too
        public.should_exit = True
    await public_task
    internal.should_exit = True
    await internal_task


def run(app: FastAPI, settings: ServiceSettings) -> None:
    loop_factory = server_config(app, settings, internal=False).get_loop_factory()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve(app, settings))
