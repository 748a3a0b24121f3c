"""What each container asks of the cluster and how the cluster can tell it is healthy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.constants import PROBE_PORT_NAME
from policy.model import (
    EMPTY,
    LONG_RUNNING,
    Container,
    Resource,
    as_list,
    as_map,
    container_label,
    containers,
    dig,
    number,
)

PROBES = ("startupProbe", "livenessProbe", "readinessProbe")
PORT_HANDLERS = ("httpGet", "tcpSocket", "grpc")


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


def _declared_ports(c: Container) -> tuple[dict[str, int], set[int]]:
    """The container's ports: by name, and every number it declares."""
    by_name: dict[str, int] = {}
    numbers: set[int] = set()
    for port in as_list(c.spec.get("ports")):
        value = number(dig(port, "containerPort"))
        if value is None:
            continue
        numbers.add(int(value))
        if dig(port, "name"):
            by_name[str(port["name"])] = int(value)
    return by_name, numbers


def check_probes_on_declared_port(resource: Resource, config: Mapping[str, Any] = EMPTY) -> list[str]:
    """A probe aimed at a port the container does not declare checks nothing the pod serves; one aimed
    at the public port of a service whose probes live on its internal port fails forever (the public
    port answers 404 for /health/*), so the pod never becomes ready."""
    wanted = str(config.get("probePort") or PROBE_PORT_NAME)
    out = []
    for c in _app_containers(resource):
        by_name, numbers = _declared_ports(c)
        for probe in PROBES:
            spec = as_map(c.spec.get(probe))
            handler = next((h for h in PORT_HANDLERS if h in spec), None)
            if handler is None:
                continue  # exec probes (and absent ones) target no port
            target = dig(spec, handler, "port")
            resolved = by_name.get(target) if isinstance(target, str) else number(target)
            field = f"{c.path}.{probe}.{handler}.port"
            if resolved is None or int(resolved) not in numbers:
                out.append(
                    f"{container_label(resource, c)}: {field} is {target!r}, which {c.path}.ports does "
                    f"not declare; fix: declare the port (named '{wanted}' for a service) and probe it"
                )
            elif wanted in by_name and int(resolved) != by_name[wanted]:
                out.append(
                    f"{container_label(resource, c)}: {field} is {target!r}, not the container's "
                    f"'{wanted}' port ({by_name[wanted]}); fix: probe '{wanted}': the public port "
                    "answers 404 for /health/*, so the pod would never become ready"
                )
    return out
