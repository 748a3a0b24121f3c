"""A stack's NATS servers on this machine, from the StatefulSet's rendered config and pod environment:
one per pod, each on a loopback address of its own (substitutions: ``RenderedNats``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import httpx

from tests.datastores.rendered import Manifest, command_file, container_env, find
from tests.datastores.servers import RenderedNats, loopback_address


@contextlib.contextmanager
def rendered_nats(objects: list[Manifest]) -> Iterator[list[RenderedNats]]:
    """Every server of the stack's NATS StatefulSet, started together (podManagementPolicy Parallel)."""
    workload = find(objects, "StatefulSet", "nats")
    conf = command_file(workload, objects, after="--config")
    meta, spec = workload["metadata"], workload["spec"]
    replicas = int(spec["replicas"])
    addresses = [loopback_address() for _ in range(replicas)]
    pod_hosts = {
        f"{meta['name']}-{n}.{spec['serviceName']}.{meta['namespace']}.svc": addresses[n]
        for n in range(replicas)
    }
    cluster = pod_hosts if replicas > 1 else None
    servers = [
        RenderedNats(addresses[n], conf, container_env(workload, objects, ordinal=n), cluster)
        for n in range(replicas)
    ]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.cleanup()


def wait_healthy(servers: list[RenderedNats], timeout: float = 60) -> None:
    """Until every server reports JetStream healthy (the startup and liveness probes' path) and, in a
    cluster, knows the JetStream meta leader its peers elected."""
    deadline = time.monotonic() + timeout
    pending = list(servers)
    while pending and time.monotonic() < deadline:
        for server in list(pending):
            if _healthy(server, clustered=len(servers) > 1):
                pending.remove(server)
        time.sleep(0.2)
    assert not pending, [s.log_tail() for s in pending]


def _healthy(server: RenderedNats, clustered: bool) -> bool:
    base = f"http://{server.host}:{server.monitor_port}"
    with contextlib.suppress(httpx.TransportError, ValueError):
        if httpx.get(f"{base}/healthz?js-enabled-only=true", timeout=1).status_code != 200:
            return False
        return not clustered or bool(
            httpx.get(f"{base}/jsz", timeout=1).json().get("meta_cluster", {}).get("leader")
        )
    return False
