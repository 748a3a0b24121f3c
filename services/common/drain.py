"""Stopping without losing a request: readiness fails first, serving goes on, then a graceful stop.

Plain uvicorn stops accepting connections the moment SIGTERM arrives, while balancers still send
new ones for as long as the endpoint removal takes to reach them, and clients holding keep-alive
connections (the gateway's pools) write their next request into a socket that is being closed. So
the first SIGTERM (or Ctrl-C) starts a drain instead: for ``drain_seconds`` the server goes on
serving while ``/health/ready`` answers 503 and every response carries ``Connection: close`` (each
keep-alive client reconnects, through the balancer, to another replica); then uvicorn stops
listening, gives requests still running ``timeout_graceful_shutdown`` to finish, and the app's
lifespan shutdown runs. A second signal stops at once. In Kubernetes the pod's preStop hook sleeps
before SIGTERM is even sent (infra/builders/shutdown.py), which covers the endpoint removal; the
numbers of both live in ``services.catalog.SHUTDOWN``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import FrameType

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.health import Health

log = logging.getLogger("venta.drain")
_CLOSE = (b"connection", b"close")


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a drain between the first signal and the stop."""

    def __init__(self, config: uvicorn.Config, drain_seconds: float, on_drain: Callable[[], None]) -> None:
        super().__init__(config)
        self._drain_seconds = drain_seconds
        self._on_drain = on_drain
        self._drain_until: float | None = None
        self._announced = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_until is None and not self.should_exit and self._drain_seconds > 0:
            # Runs in the signal handler: only set state; the main loop's tick does the rest.
            self._drain_until = time.monotonic() + self._drain_seconds
            self._on_drain()
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None:
            if not self._announced:
                self._announced = True
                log.info(
                    "draining: not ready, closing connections after each response",
                    extra={"seconds": self._drain_seconds},
                )
            if time.monotonic() >= self._drain_until:
                self.should_exit = True
        return await super().on_tick(counter)


class CloseWhileDraining:
    """Pure ASGI: while the service drains, every HTTP response closes its connection."""

    def __init__(self, app: ASGIApp, health: Health) -> None:
        self.app = app
        self.health = health

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.health.draining:
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), _CLOSE]
            await send(message)

        await self.app(scope, receive, send_closing)
