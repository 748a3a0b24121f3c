"""The one app factory every service builds on.

``build_app(settings, title=..., routers=[...])`` returns a FastAPI app that, in its lifespan, opens
exactly the clients its settings ask for (a ``DatabaseSettings`` subclass gets a pool and its
migrations applied, ``RedisSettings`` a Redis client, ``NatsSettings`` a NATS connection with the
streams ensured, ``JwtSettings`` a token verifier), registers a readiness check for each, runs the
service's own ``background`` context (consumers, relays) and closes everything in reverse order on
shutdown: background work drains first, then NATS drains (or just closes, if it is down), then Redis
and the pool close.

The app it returns serves the service's routers only (no slash redirects: a redirect would name the
address the request came to, an internal one behind the gateway). Probes, metrics and docs live on
``app.state.internal_app`` (``services/common/internal.py``), served on ``INTERNAL_PORT``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import APIRouter, FastAPI
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from redis.asyncio import Redis
from starlette.middleware import Middleware

from services.common import nats_client, postgres, replica
from services.common.auth import TokenVerifier
from services.common.drain import CloseWhileDraining
from services.common.errors import install_error_handlers
from services.common.health import Health
from services.common.inputs import NulGuard
from services.common.internal import build_internal_app
from services.common.logs import configure_logging
from services.common.metrics import RequestContextMiddleware
from services.common.migrations import apply_migrations
from services.common.redis_client import open_redis
from services.common.settings import (
    DatabaseSettings,
    JwtSettings,
    NatsSettings,
    RedisSettings,
    ServiceSettings,
)

log = logging.getLogger("venta.app")


@dataclass
class Resources:
    """The clients a running service holds; reach them through ``services.common.deps``."""

    settings: ServiceSettings
    db: asyncpg.Pool | None = None
    # Reads that tolerate lag: the read replica when DATABASE_READ_URL is set, else the primary.
    reads: replica.ReadPool | None = None
    redis: Redis | None = None
    nats: NatsClient | None = None
    js: JetStreamContext | None = None
    verifier: TokenVerifier | None = None


Background = Callable[[FastAPI, Resources], contextlib.AbstractAsyncContextManager[None]]


@contextlib.asynccontextmanager
async def _open_resources(
    app: FastAPI,
    settings: ServiceSettings,
    migrations: Path | None,
    streams: Sequence[nats_client.StreamSpec],
) -> AsyncIterator[Resources]:
    health: Health = app.state.health
    res = Resources(settings=settings)
    async with contextlib.AsyncExitStack() as stack:
        if isinstance(settings, DatabaseSettings):
            pool = res.db = await postgres.open_pool(settings)
            stack.push_async_callback(pool.close)
            if migrations is not None:
                async with pool.acquire() as conn:
                    await apply_migrations(conn, settings.service_name, migrations)
            health.add_check("postgres", lambda: postgres.ping(pool))
            # The replica is no readiness check: the primary serves its reads while it is away.
            read_pool = None
            if settings.database_read_url is not None:
                url = settings.database_read_url.get_secret_value()
                read_pool = await replica.open_replica_pool(url, settings.db_pool_max, settings.service_name)
                stack.push_async_callback(read_pool.close)
            res.reads = replica.ReadPool(pool, read_pool, settings.db_read_retry_seconds)
        if isinstance(settings, RedisSettings):
            redis = res.redis = open_redis(settings)
            stack.push_async_callback(redis.aclose)
            health.add_check("redis", redis.ping)
        if isinstance(settings, NatsSettings):
            watch = nats_client.ConnectionWatch(settings.nats_outage_budget_seconds)
            nc = res.nats = await nats_client.connect(settings, watch)
            stack.push_async_callback(nats_client.close, nc)
            res.js = nc.jetstream()
            if streams:
                await nats_client.ensure_streams(res.js, *streams)
            health.add_check("nats", lambda: watch.check(nc))
        if isinstance(settings, JwtSettings):
            res.verifier = TokenVerifier(settings.jwt_public_key, cache_seconds=settings.token_cache_seconds)
        yield res


def build_app(
    settings: ServiceSettings,
    *,
    title: str,
    routers: Sequence[APIRouter],
    migrations: Path | None = None,
    streams: Sequence[nats_client.StreamSpec] = (),
    background: Background | None = None,
    configure: Callable[[FastAPI], Any] | None = None,
    middleware: Sequence[Middleware] = (),
    internal_routers: Sequence[APIRouter] = (),
    guard_inputs: bool = True,
) -> FastAPI:
    """``configure(app)`` runs before the lifespan starts (extra checks, state). ``middleware`` sits
    inside the request context (so it sees the request id and is counted in the metrics).
    ``internal_routers`` go on the internal port beside the probes. ``guard_inputs`` refuses NUL in
    paths, queries and JSON/form bodies with a 422 (``services/common/inputs.py``); only a service
    that stores nothing and must not read bodies whole (the gateway) turns it off."""
    configure_logging(settings.service_name, settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with _open_resources(app, settings, migrations, streams) as res:
            app.state.resources = res
            if background is None:
                log.info("started")
                yield
            else:
                async with background(app, res):
                    log.info("started")
                    yield
            log.info("stopping")

    app = FastAPI(
        title=title,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.health = Health(service=settings.service_name, environment=settings.environment)
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(CloseWhileDraining, health=app.state.health)
    guard = [Middleware(NulGuard)] if guard_inputs else []
    # add_middleware would put these outside the request context.
    app.user_middleware.extend([*guard, *middleware])
    for router in routers:
        app.include_router(router)
    app.state.internal_app = build_internal_app(app, settings, internal_routers)
    if configure is not None:
        configure(app)
    return app
