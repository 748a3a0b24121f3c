"""Cluster addresses as the image tests' containers reach them.

Each service container sits on one Docker network with its Service's DNS names as aliases, so a URL
such as ``http://user-management`` resolves there as in the namespace; only the port changes, from
the Service's port to the container port it targets (Docker has no Services to map ports). A data
store's Service becomes the local server of that kind on the network's host address.
Pure functions over plain manifests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

Manifest = dict[str, Any]
Address = tuple[str, int]
DATA_STORES = ("postgres", "redis", "redis-cache", "nats")
NAME_LABEL = "app.kubernetes.io/name"
DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "postgres": 5432}
DEFAULT_PORTS |= {"redis": 6379, "rediss": 6379, "nats": 4222, "tls": 4222}
_URL = re.compile(
    r"(?P<head>(?P<scheme>[a-z][a-z0-9+.-]*)://(?:[^@/\s,]*@)?)(?P<host>[A-Za-z0-9.-]+)(?::(?P<port>\d+))?"
)


def dns_names(name: str, namespace: str) -> list[str]:
    """Every name a pod of ``namespace`` may use for the Service ``name``."""
    return [name, f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"]


def services(objects: Iterable[Manifest]) -> list[Manifest]:
    return [o for o in objects if o["kind"] == "Service"]


def selects(service: Manifest, workload: Manifest) -> bool:
    selector = service["spec"].get("selector") or {}
    labels = workload["spec"]["template"]["metadata"].get("labels") or {}
    same_namespace = service["metadata"].get("namespace") == workload["metadata"].get("namespace")
    return bool(selector) and same_namespace and selector.items() <= labels.items()


def service_named(host: str, namespace: str, candidates: Iterable[Manifest]) -> Manifest | None:
    for service in candidates:
        meta = service["metadata"]
        if meta.get("namespace") == namespace and host in dns_names(meta["name"], meta["namespace"]):
            return service
    return None


def target_port(service: Manifest, port: int, container_ports: Mapping[str, int]) -> int:
    """The container port behind ``port`` of ``service`` (a number, or a named port of the container)."""
    for entry in service["spec"]["ports"]:
        if int(entry["port"]) == port:
            target = entry.get("targetPort", entry["port"])
            if str(target) not in container_ports:
                raise ValueError(
                    f"Service {service['metadata']['name']}: targetPort {target!r} is no port of its pod"
                )
            return container_ports[str(target)]
    raise ValueError(f"Service {service['metadata']['name']} has no port {port}")


def repoint(value: str, resolve: Callable[[str, str, int], Address | None]) -> str:
    """``value`` with every URL's host and port replaced by ``resolve(scheme, host, port)``, where that
    gives an address (URLs of other hosts stay as they are)."""

    def swap(found: re.Match[str]) -> str:
        scheme, host = found["scheme"], found["host"]
        port = int(found["port"]) if found["port"] else DEFAULT_PORTS.get(scheme)
        new = resolve(scheme, host, port) if port is not None else None
        return found[0] if new is None else f"{found['head']}{new[0]}:{new[1]}"

    return _URL.sub(swap, value)


def resolver(
    namespace: str,
    objects: list[Manifest],
    workloads: Mapping[str, Manifest],
    container_ports: Mapping[str, Mapping[str, int]],
    stores: Mapping[str, Address],
) -> Callable[[str, str, int], Address | None]:
    """Maps a Service address to where the containers reach it: a service pod's container (same DNS
    name, target port) or the local data store of the Service's kind."""
    known = services(objects)

    def resolve(scheme: str, host: str, port: int) -> Address | None:
        service = service_named(host, namespace, known)
        if service is None:
            return None
        kind = (service["metadata"].get("labels") or {}).get(NAME_LABEL)
        if kind in DATA_STORES:
            if kind not in stores:
                raise ValueError(f"{scheme}://{host}:{port} is a {kind} Service but no local {kind} runs")
            return stores[kind]
        for name, workload in workloads.items():
            if selects(service, workload):
                return host, target_port(service, port, container_ports[name])
        raise ValueError(f"Service {service['metadata']['name']} selects none of the containers started")

    return resolve
