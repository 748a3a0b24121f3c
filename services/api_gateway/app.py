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
from services.common.app import Background, Resources, build_app
from services.common.settings import load_settings


def _clients(gateway: Gateway, settings: GatewaySettings) -> Background:
    @contextlib.asynccontextmanager
    async def run(app: FastAPI, res: Resources) -> AsyncIterator[None]:
        assert res.redis is not None
        gateway.open(RateLimiter(res.redis, settings.rate_limit_requests, settings.rate_limit_window_seconds))
        try:
            yield
        finally:
            await gateway.close()

    return run


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    gateway = Gateway(settings, ROUTES)

    def configure(app: FastAPI) -> None:
        app.state.gateway = gateway

        async def details() -> dict[str, Any]:
            return (await upstreams.upstreams_report(gateway)).model_dump()

        app.state.health.add_details("upstreams", details)

    return build_app(
        settings,
        title="api-gateway",
        routers=[upstreams.router],
        background=_clients(gateway, settings),
        configure=configure,
        middleware=[Middleware(GatewayMiddleware, gateway=gateway)],
    )
