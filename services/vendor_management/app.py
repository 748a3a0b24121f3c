from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI

from services.common.app import Resources, build_app
from services.common.nats_client import VENDOR_STATE_STREAM, VENDORS_STREAM
from services.common.settings import load_settings
from services.common.tasks import running_tasks
from services.vendor_management.backfill import backfill_until_done
from services.vendor_management.outbox import relay_running
from services.vendor_management.routes import vendors
from services.vendor_management.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    relay = relay_running(settings)

    @contextlib.asynccontextmanager
    async def background(app: FastAPI, res: Resources) -> AsyncIterator[None]:
        assert res.db is not None and res.js is not None
        backfill = backfill_until_done(res.db, res.js)
        async with relay(app, res), running_tasks(vendor_state_backfill=backfill):
            yield

    return build_app(
        settings,
        title="vendor-management",
        routers=[vendors.router],
        migrations=Path(__file__).parent / "migrations",
        streams=[VENDORS_STREAM, VENDOR_STATE_STREAM],
        background=background,
    )
