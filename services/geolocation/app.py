"""geolocation's app: the location routes over Redis, the vendor-event consumer and the reload of
the vendor data when Redis lost it, event publishing."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from services.common.app import Resources, build_app
from services.common.nats_client import LOCATIONS_STREAM, VENDOR_STATE_STREAM, VENDORS_STREAM
from services.common.redis_client import open_pipelined_redis
from services.common.settings import load_settings
from services.common.tasks import running_tasks
from services.geolocation import vendor_consumer
from services.geolocation.rebuild import VendorRebuild
from services.geolocation.routes import locations
from services.geolocation.settings import Settings
from services.geolocation.store import LocationStore


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)

    @contextlib.asynccontextmanager
    async def background(app: FastAPI, res: Resources) -> AsyncIterator[None]:
        assert res.redis is not None and res.js is not None
        scripts = open_pipelined_redis(settings)
        store = LocationStore(res.redis, scripts, settings.location_stale_after_seconds)
        app.state.location_store = store
        rebuild = app.state.vendor_rebuild = VendorRebuild(res.js, store)
        consumer = vendor_consumer.consume(res.js, store, settings.queue_name)
        await rebuild.check()  # before serving: the vendor data is there, or being loaded
        try:
            async with running_tasks(vendor_events=consumer, vendor_rebuild=rebuild.run()):
                yield
        finally:
            await scripts.aclose()

    return build_app(
        settings,
        title="Venta geolocation",
        routers=[locations.router],
        streams=[VENDORS_STREAM, LOCATIONS_STREAM, VENDOR_STATE_STREAM],
        background=background,
    )
