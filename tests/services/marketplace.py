"""Builders for the marketplace services under test: settings on real servers, tokens, HTTP clients."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from localdev.services import CLOSED_PORT
from services.api_gateway.routes_table import ROUTES, upstream_internal_setting, upstream_setting
from services.api_gateway.settings import GatewaySettings
from services.api_gateway.settings import Settings as GatewayConfig
from services.common.auth import TokenIssuer
from services.search_discovery.settings import Settings as SearchSettings
from services.user_management.settings import Settings as UserSettings
from services.vendor_management.settings import Settings as VendorSettings

# Cheap argon2 parameters: the tests exercise the flow, not the hash's cost.
FAST_HASH: dict[str, Any] = {"password_hash_memory_kib": 1024, "password_hash_time_cost": 1}


@dataclass
class Servers:
    """Connection details of the real servers of one test."""

    new_database: Callable[[], Awaitable[str]]
    redis_url: str
    nats_url: str
    public_pem: str
    signing_seed: str

    async def user_settings(self, **extra: Any) -> UserSettings:
        return UserSettings(
            service_name="user-management",
            database_url=await self.new_database(),
            jwt_public_key=self.public_pem,
            jwt_signing_seed=self.signing_seed,
            **FAST_HASH,
            **extra,
        )

    async def vendor_settings(self, **extra: Any) -> VendorSettings:
        return VendorSettings(
            service_name="vendor-management",
            database_url=await self.new_database(),
            nats_servers=[self.nats_url],
            jwt_public_key=self.public_pem,
            **extra,
        )

    async def search_settings(self, **extra: Any) -> SearchSettings:
        return SearchSettings(
            service_name="search-discovery",
            database_url=await self.new_database(),
            redis_url=self.redis_url,
            nats_servers=[self.nats_url],
            **extra,
        )

    def gateway_settings(
        self, upstreams: dict[str, str], internals: dict[str, str] | None = None, **extra: Any
    ) -> GatewaySettings:
        """``upstreams``: API URLs; ``internals``: where their probes answer (default: the API URL,
        for stand-ins that serve ``/health/ready`` themselves)."""
        # Routes of services a test does not start point at a closed port.
        urls = {route.service: f"http://127.0.0.1:{CLOSED_PORT}" for route in ROUTES} | upstreams
        probes = urls | (internals or {})
        fields: dict[str, Any] = {upstream_setting(name): url for name, url in urls.items()}
        fields |= {upstream_internal_setting(name): url for name, url in probes.items()}
        return GatewayConfig(
            **{
                "service_name": "api-gateway",
                "redis_url": self.redis_url,
                "jwt_public_key": self.public_pem,
                **fields,
                **extra,
            }
        )

    def issuer(self) -> TokenIssuer:
        return TokenIssuer(self.signing_seed, 900)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register_and_login(
    client: httpx.AsyncClient, email: str, role: str = "vendor", prefix: str = ""
) -> tuple[str, str]:
    """(user id, access token) of a fresh account."""
    body = {"email": email, "password": "s3cret-pass", "role": role}
    created = await client.post(f"{prefix}/users/register", json=body)
    assert created.status_code == 201, created.text
    login = await client.post(f"{prefix}/users/login", json={"email": email, "password": "s3cret-pass"})
    assert login.status_code == 200, login.text
    return created.json()["id"], login.json()["access_token"]


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 10.0, what: str = "condition"
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {within} s")
