"""asyncpg pool: 2 to 10 connections by default (DB_POOL_MIN/DB_POOL_MAX, at most 100)."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from services.common.settings import DatabaseSettings

log = logging.getLogger("venta.postgres")


async def open_pool(settings: DatabaseSettings) -> asyncpg.Pool:
    """Open the pool, retrying while the database is still starting (up to the connect timeout)."""
    deadline = time.monotonic() + settings.db_connect_timeout_seconds
    delay = 0.2
    while True:
        try:
            pool = await asyncpg.create_pool(
                settings.database_url.get_secret_value(),
                min_size=settings.db_pool_min,
                max_size=settings.db_pool_max,
                timeout=min(5.0, settings.db_connect_timeout_seconds),
                command_timeout=30,
                server_settings={"application_name": settings.service_name},
            )
            assert pool is not None
            return pool
        except (OSError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError) as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("database not reachable yet, retrying", extra={"error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def ping(pool: asyncpg.Pool) -> None:
    async with pool.acquire(timeout=1.0) as conn:
        await conn.fetchval("SELECT 1")
