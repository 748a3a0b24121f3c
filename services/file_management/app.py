"""file-management's app: files routes over PostgreSQL metadata and a directory storage backend."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI

from services.common.app import build_app
from services.common.settings import load_settings
from services.file_management.routes import files
from services.file_management.settings import Settings
from services.file_management.storage import DirectoryStorage

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)

    def configure(app: FastAPI) -> None:
        storage = DirectoryStorage(settings.storage_dir)
        app.state.storage = storage

        async def storage_check() -> None:
            if not await asyncio.to_thread(storage.healthy):
                raise OSError(f"{settings.storage_dir} is not writable")

        app.state.health.add_check("storage", storage_check)

    return build_app(
        settings,
        title="Venta file-management",
        routers=[files.router],
        migrations=MIGRATIONS,
        configure=configure,
    )
