"""The services this repo builds: Kubernetes name -> Python package (docs/contracts.md).

``python -m services <name>``, the local runner and the tests read this table; adding a service is
one line here (plus its route line in ``services/api_gateway/routes_table.py`` if it is public).
``SHUTDOWN`` holds how long each step of stopping a service takes, read by the services' settings and
by the pod spec (its preStop hook and termination grace period), so the two cannot disagree.
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


@dataclass(frozen=True)
class ShutdownTimes:
    """Stopping a replica without losing a request, step by step (seconds)."""

    # preStop: the pod is already marked terminating and keeps serving everything while its removal
    # from the endpoints reaches kube-proxy, the Ingress and the gateway's DNS.
    endpoint_propagation: int = 5
    # After SIGTERM: readiness answers 503 and every response says `Connection: close`, so clients
    # holding keep-alive connections move to other replicas. Longer than the gateway's pooled
    # keep-alive (15 s): every pooled connection is either used in this time (and closed after its
    # answer) or too old for the gateway to use again, so none is closed under a request.
    drain: int = 20
    # Then the listener closes and requests still running get this long to finish.
    in_flight: int = 10
    # Then the app's shutdown: consumers finish their batch, NATS drains, pools close.
    cleanup: int = 10

    @property
    def grace_period(self) -> int:
        """terminationGracePeriodSeconds: every step above; past it the kubelet sends SIGKILL."""
        return self.endpoint_propagation + self.drain + self.in_flight + self.cleanup


SHUTDOWN = ShutdownTimes()
