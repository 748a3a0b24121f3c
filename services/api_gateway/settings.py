"""Gateway settings; one required ``UPSTREAM_<SERVICE>`` URL per service in the routes table.

``UPSTREAM_<SERVICE>_INTERNAL`` (optional) is where that service's probes answer; by default the
upstream's host on the gateway's own ``INTERNAL_PORT`` (in a cluster every service shares one).
"""

from __future__ import annotations

from typing import Annotated, Any, cast
from urllib.parse import urlsplit, urlunsplit

from pydantic import AfterValidator, AnyHttpUrl, Field, create_model, field_validator
from pydantic_settings import NoDecode

from services.api_gateway.client_address import Network, parse_networks
from services.api_gateway.routes_table import ROUTES, upstream_internal_setting, upstream_setting
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
    # Bodies up to this size are read whole before forwarding (so a failed connection can be retried);
    # larger or chunked ones stream through, holding at most a few chunks in memory.
    body_buffer_max_bytes: int = Field(default=64 * 1024, ge=0, le=1024 * 1024)
    # A request body must arrive within this deadline, and at least `body_min_rate` bytes per second
    # over every `body_rate_window` (a stalled or trickling upload is cut with a 408).
    body_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)
    body_min_rate_bytes_per_second: int = Field(default=1024, ge=0)
    body_rate_window_seconds: float = Field(default=10.0, gt=0, le=600)
    # Request bodies one client (user, or address when anonymous) may have in flight at once.
    body_max_in_flight_per_client: int = Field(default=8, ge=1, le=1000)
    rate_limit_requests: int = Field(default=600, ge=1)
    rate_limit_window_seconds: int = Field(default=60, ge=1, le=3600)
    # Peers whose X-Forwarded-For is believed (the ingress controller's addresses), comma-separated
    # CIDRs. Empty: the connecting address is the client, whatever the headers say.
    trusted_proxy_cidrs: Annotated[tuple[Network, ...], NoDecode] = ()
    # WebSockets (/api/realtime/ws): open tunnels per user and in all on one replica, time to
    # authenticate and reach real-time, silence both ways before the gateway closes, largest server
    # message.
    ws_max_connections_per_user: int = Field(default=5, ge=1, le=1000)
    ws_max_connections: int = Field(default=10_000, ge=1, le=1_000_000)
    ws_handshake_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    ws_idle_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)
    ws_max_upstream_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    # /health/upstreams (internal port) answers from a report at most this old, so callers never
    # multiply the upstreams' readiness checks.
    upstreams_report_max_age_seconds: float = Field(default=5.0, ge=0.5, le=300)

    @field_validator("trusted_proxy_cidrs", mode="before")
    @classmethod
    def _cidrs(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return parse_networks(value)
        return value

    def upstream_url(self, service: str) -> str:
        return str(getattr(self, upstream_setting(service)))

    def upstream_internal_url(self, service: str) -> str:
        given = getattr(self, upstream_internal_setting(service), None)
        if given:
            return str(given)
        parts = urlsplit(self.upstream_url(service))
        return urlunsplit(("http", f"{parts.hostname}:{self.internal_port}", "", "", ""))


_fields: dict[str, Any] = {upstream_setting(route.service): (UpstreamUrl, ...) for route in ROUTES}
_fields |= {upstream_internal_setting(route.service): (UpstreamUrl | None, None) for route in ROUTES}
Settings = cast(type[GatewaySettings], create_model("Settings", __base__=GatewaySettings, **_fields))
