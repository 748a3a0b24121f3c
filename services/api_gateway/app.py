"""api-gateway: the single public entry point; routes /api/... (HTTP and WebSocket) to the services.

The public port serves only ``/api/...`` (see routes_table.py); probes, metrics and the upstream
readiness view are on the internal port like every service's.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.middleware import Middleware

from services.api_gateway.proxy import Gateway, GatewayMiddleware
from services.api_gateway.ratelimit import RateLimiter
from services.api_gateway.routes import upstreams
from services.api_gateway.routes_table import ROUTES
from services.api_gateway.settings import GatewaySettings, Settings
from services.api_gateway.websocket import WebSocketProxy
from services.common.app import Background, Resources, build_app
from services.common.settings import load_settings
from services.common.tasks import running_tasks


def _clients(gateway: Gateway, websockets: WebSocketProxy, settings: GatewaySettings) -> Background:
    @contextlib.asynccontextmanager
    async def run(app: FastAPI, res: Resources) -> AsyncIterator[None]:
        assert res.redis is not None
        gateway.open(RateLimiter(res.redis, settings.rate_limit_requests, settings.rate_limit_window_seconds))
        websockets.open()
        try:
            async with running_tasks(websocket_idle=websockets.tunnels.watch()):
                yield
        finally:
            await websockets.close()
            await gateway.close()

    return run


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    gateway = Gateway(settings, ROUTES)
    websockets = WebSocketProxy(gateway)
    view = upstreams.UpstreamsView(gateway, settings.upstreams_report_max_age_seconds)

    def configure(app: FastAPI) -> None:
        app.state.gateway = gateway
        app.state.websockets = websockets
        app.state.upstreams_view = view

        async def details() -> dict[str, Any]:
            return (await view.report()).model_dump()

        app.state.health.add_details("upstreams", details)

    return build_app(
        settings,
        title="api-gateway",
        routers=[],
        background=_clients(gateway, websockets, settings),
        configure=configure,
        middleware=[Middleware(GatewayMiddleware, gateway=gateway, websockets=websockets.handle)],
        internal_routers=[upstreams.router],
        # Bodies stream through untouched; each service refuses what it cannot store.
        guard_inputs=False,
    )
