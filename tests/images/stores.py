"""The data stores of a rendered stack as real servers on this machine for the service containers,
set up from what the stack renders (tests/datastores/servers.py): PostgreSQL initialised as the
postgres image does it with the init scripts the pod mounts (a role with its password and a database
per service; the containers log in with scram-sha-256, so a service whose Secret carries a wrong
password fails as it would in the cluster), Redis and NATS with the config files their pods mount
(Redis' password, NATS' user per service), with only addresses, ports and directories moved.

They listen on the host side of the containers' network.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from localdev.servers import Server
from tests.datastores.rendered import command_file, container_env, find, mounted_files
from tests.datastores.servers import PodPostgres, RenderedNats, RenderedRedis
from tests.images.addresses import DATA_STORES, Address
from tests.images.pods import Manifest


def data_store_workloads(objects: list[Manifest]) -> dict[str, Manifest]:
    """The StatefulSet of each data store kind, by its name label."""
    return {kind: find(objects, "StatefulSet", kind) for kind in DATA_STORES}


@contextlib.contextmanager
def rendered_data_stores(objects: list[Manifest], host: str) -> Iterator[dict[str, Address]]:
    """PostgreSQL, Redis (main and cache) and NATS as the stack renders them, listening on ``host``;
    yields each one's address by kind; stops and deletes them on exit."""
    workloads = data_store_workloads(objects)
    servers: list[Server] = []
    try:
        pod = workloads["postgres"]
        postgres = PodPostgres(host, container_env(pod, objects), mounted_files(pod, objects))
        servers.append(postgres)
        postgres.start_as_pod()
        for redis in ("redis", "redis-cache"):
            servers.append(RenderedRedis(host, command_file(workloads[redis], objects)))
            servers[-1].start()
        nats_conf = command_file(workloads["nats"], objects, after="--config")
        servers.append(RenderedNats(host, nats_conf, container_env(workloads["nats"], objects)))
        servers[-1].start()
        yield {kind: (host, server.port) for kind, server in zip(DATA_STORES, servers, strict=True)}
    finally:
        for server in servers:
            server.cleanup()
