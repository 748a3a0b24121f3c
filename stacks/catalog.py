"""The eight services and what each one needs, as docs/contracts.md fixes them.

This is data shared by the settings (which services exist) and the components (what to wire to
each service). It knows nothing about Kubernetes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ServiceName = Literal[
    "api-gateway",
    "user-management",
    "vendor-management",
    "search-discovery",
    "geolocation",
    "real-time",
    "webhooks",
    "file-management",
]

GATEWAY = "api-gateway"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    area: str
    database: bool = False
    redis: bool = False
    nats: bool = False
    # user-management alone holds the token signing seed; everyone else gets only the public key.
    signs_tokens: bool = False
    # file-management keeps uploads on a persistent volume mounted at STORAGE_DIR.
    file_storage: bool = False
    # webhooks delivers to customer endpoints on the internet.
    internet_egress: bool = False

    @property
    def env_suffix(self) -> str:
        """`user-management` -> `USER_MANAGEMENT`, as in `UPSTREAM_USER_MANAGEMENT`."""
        return self.name.upper().replace("-", "_")

    @property
    def database_name(self) -> str:
        """PostgreSQL identifiers cannot hold `-` unquoted, so `vendor-management` -> `vendor_management`."""
        return self.name.replace("-", "_")


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("api-gateway", "infrastructure", redis=True),
    ServiceSpec("user-management", "marketplace", database=True, signs_tokens=True),
    ServiceSpec("vendor-management", "marketplace", database=True, nats=True),
    ServiceSpec("search-discovery", "marketplace", database=True, redis=True, nats=True),
    ServiceSpec("geolocation", "location", redis=True, nats=True),
    ServiceSpec("real-time", "location", nats=True),
    ServiceSpec("webhooks", "communication", database=True, nats=True, internet_egress=True),
    ServiceSpec("file-management", "infrastructure", database=True, file_storage=True),
)

SERVICE_NAMES: tuple[str, ...] = tuple(s.name for s in SERVICES)
BY_NAME: dict[str, ServiceSpec] = {s.name: s for s in SERVICES}


def callers_of(service: str) -> tuple[str, ...]:
    """Which services open connections to `service`: the gateway routes to every other service."""
    return () if service == GATEWAY else (GATEWAY,)
