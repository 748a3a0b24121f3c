"""The services a stack configures, as services/catalog.py lists them (the one owner of that list).

Settings validate service names against it; the components read what to wire to each service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from services.catalog import SERVICES as _ENTRIES
from services.catalog import Service

ServiceSpec = Service
SERVICES: tuple[Service, ...] = tuple(_ENTRIES.values())
SERVICE_NAMES: tuple[str, ...] = tuple(_ENTRIES)
BY_NAME: dict[str, Service] = dict(_ENTRIES)

if TYPE_CHECKING:
    ServiceName = str
else:
    # A Literal built from the catalog: settings name an unknown service with "allowed one of ...".
    ServiceName = Literal[SERVICE_NAMES]
