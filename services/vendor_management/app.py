from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.common.app import build_app
from services.common.nats_client import VENDOR_STATE_STREAM, VENDORS_STREAM
from services.common.settings import load_settings
from services.vendor_management.outbox import relay_running
from services.vendor_management.routes import vendors
from services.vendor_management.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    return build_app(
        settings,
        title="vendor-management",
        routers=[vendors.router],
        migrations=Path(__file__).parent / "migrations",
        streams=[VENDORS_STREAM, VENDOR_STATE_STREAM],
        background=relay_running(settings),
    )
