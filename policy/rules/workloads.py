"""What each container asks of the cluster and how the cluster can tell it is healthy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.model import EMPTY, LONG_RUNNING, Resource, as_map, container_label, containers, dig


def check_resource_requests(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    out = []
    for c in containers(resource):
        requests = as_map(dig(c.spec, "resources", "requests"))
        missing = [key for key in ("cpu", "memory") if not requests.get(key)]
        if missing:
            out.append(
                f"{container_label(resource, c)}: {c.path}.resources.requests has no "
                f"{' or '.join(missing)}; fix: request the CPU and memory the container needs"
            )
    return out


def check_memory_limit(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    return [
        f"{container_label(resource, c)}: {c.path}.resources.limits.memory is unset; fix: set a memory limit "
        "so one leaking pod cannot starve the node"
        for c in containers(resource)
        if not dig(c.spec, "resources", "limits", "memory")
    ]


def _app_containers(resource: Resource) -> list[Any]:
    # Probes matter for pods that keep running; init containers and Jobs run to completion.
    if resource.kind not in LONG_RUNNING:
        return []
    return [c for c in containers(resource) if not c.init]


def check_probes_present(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    out = []
    for c in _app_containers(resource):
        for probe in ("readinessProbe", "livenessProbe"):
            if not c.spec.get(probe):
                out.append(
                    f"{container_label(resource, c)}: {c.path}.{probe} is unset; fix: add a "
                    f"{probe} ({'/health/ready' if probe == 'readinessProbe' else '/health/live'})"
                )
    return out


def _probe_check(probe: Mapping[str, Any]) -> tuple[str, str] | None:
    """What a probe actually does, without its timings: the handler and its target."""
    for handler in ("httpGet", "tcpSocket", "grpc", "exec"):
        if handler in probe:
            return handler, repr(sorted((k, repr(v)) for k, v in as_map(probe[handler]).items()))
    return None


def check_probes_distinct(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    out = []
    for c in _app_containers(resource):
        ready, live = as_map(c.spec.get("readinessProbe")), as_map(c.spec.get("livenessProbe"))
        if ready and live and _probe_check(ready) == _probe_check(live):
            out.append(
                f"{container_label(resource, c)}: {c.path}.livenessProbe runs the same check as the "
                "readinessProbe; fix: let liveness check the process alone and readiness whether it "
                "can serve (the services: /health/live and /health/ready)"
            )
    return out
