"""Gateway settings; one required ``UPSTREAM_<SERVICE>`` URL per service in the routes table."""

from __future__ import annotations

from typing import Annotated, Any, cast

from pydantic import AfterValidator, AnyHttpUrl, Field, create_model

from services.api_gateway.routes_table import ROUTES, upstream_setting
from services.common.settings import JwtSettings, RedisSettings, url_of

# Kept as given, without a trailing slash: the request path is appended to it.
UpstreamUrl = Annotated[
    str, url_of(AnyHttpUrl, "http:// or https://"), AfterValidator(lambda v: v.rstrip("/"))
]


class GatewaySettings(RedisSettings, JwtSettings):
    upstream_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    upstream_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    # Extra attempts after a refused connection (any method) or another connection failure
    # (idempotent methods only); never after a timeout.
    upstream_retries: int = Field(default=2, ge=0, le=5)
    upstream_pool_size: int = Field(default=100, ge=1, le=10_000)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Routes marked `uploads` (files): file-management's own 10 MiB limit plus multipart framing, so
    # the gateway never refuses what the service would accept.
    upload_max_bytes: int = Field(default=10 * 1024 * 1024 + 64 * 1024, ge=1024)
    rate_limit_requests: int = Field(default=600, ge=1)
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=3600)

    def upstream_url(self, service: str) -> str:
        return str(getattr(self, upstream_setting(service)))


_fields: dict[str, Any] = {upstream_setting(route.service): (UpstreamUrl, ...) for route in ROUTES}
Settings = cast(type[GatewaySettings], create_model("Settings", __base__=GatewaySettings, **_fields))
