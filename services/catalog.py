"""The services this repo builds: Kubernetes name -> Python package (docs/contracts.md).

``python -m services <name>``, the local runner and the tests read this table; adding a service is
one line here (plus its route line in ``services/api_gateway/routes_table.py`` if it is public).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceEntry:
    name: str  # Kubernetes name and SERVICE build arg
    package: str  # module under services/
    dev_port: int  # port of the local run (python -m localdev)

    @property
    def dev_internal_port(self) -> int:
        """The local run's INTERNAL_PORT (probes, metrics, docs): 9080 and up."""
        return self.dev_port + 1000


SERVICES: dict[str, ServiceEntry] = {
    entry.name: entry
    for entry in (
        ServiceEntry("api-gateway", "api_gateway", 8080),
        ServiceEntry("user-management", "user_management", 8081),
        ServiceEntry("vendor-management", "vendor_management", 8082),
        ServiceEntry("search-discovery", "search_discovery", 8083),
        ServiceEntry("geolocation", "geolocation", 8084),
        ServiceEntry("real-time", "real_time", 8085),
        ServiceEntry("webhooks", "webhooks", 8086),
        ServiceEntry("file-management", "file_management", 8087),
    )
}
