from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.common.app import build_app
from services.common.auth import TokenIssuer
from services.common.settings import load_settings
from services.user_management.passwords import Passwords
from services.user_management.routes import auth, profile
from services.user_management.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings(Settings)
    app = build_app(
        settings,
        title="user-management",
        routers=[auth.router, profile.router],
        migrations=Path(__file__).parent / "migrations",
    )
    app.state.passwords = Passwords(settings.password_hash_memory_kib, settings.password_hash_time_cost)
    app.state.issuer = TokenIssuer(
        settings.jwt_signing_seed.get_secret_value(), settings.access_token_ttl_seconds
    )
    return app
