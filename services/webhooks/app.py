"""webhooks' app: subscription and delivery routes, the JetStream ingest, the delivery worker and
the retention of finished deliveries."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from services.common.app import Resources, build_app
from services.common.retention import keep_deleting
from services.common.settings import load_settings
from services.common.tasks import running_tasks
from services.webhooks import delivery, ingest, retention
from services.webhooks.routes import deliveries, subscriptions
from services.webhooks.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)

    @contextlib.asynccontextmanager
    async def background(app: FastAPI, res: Resources) -> AsyncIterator[None]:
        assert res.db is not None and res.js is not None
        async with delivery.Deliverer(res.db, settings) as deliverer:
            loops = ingest.consumers(res.js, res.db, settings.queue_name)
            purge = keep_deleting(
                res.db,
                retention.PURGE,
                settings.webhook_retention_days * 86400,
                settings.webhook_retention_interval_seconds,
                retention.PURGED,
            )
            async with running_tasks(**loops, delivery=deliverer.run(), retention=purge):
                yield

    return build_app(
        settings,
        title="Venta webhooks",
        routers=[subscriptions.router, deliveries.router],
        migrations=MIGRATIONS,
        streams=ingest.SOURCES,
        background=background,
    )
