"""Configuration files of the data stores. They hold passwords, so they always go into Secrets."""

from __future__ import annotations

import json
from collections.abc import Mapping

from infra.builders import names
from infra.builders.nats_permissions import users_block
from stacks.catalog import SERVICES

REPLICATION_USER = "replicator"
NATS_CLUSTER_USER = "cluster"


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def postgres_init_sql(passwords: Mapping[str, str]) -> str:
    """One role and one database per service, each owning only its own database."""
    lines = []
    for database, secret in sorted(passwords.items()):
        lines += [
            f'CREATE ROLE "{database}" LOGIN PASSWORD {_sql_literal(secret)};',
            f'CREATE DATABASE "{database}" OWNER "{database}";',
            f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC;',
        ]
    return "\n".join(lines) + "\n"


def postgres_replication_sql(replication_password: str) -> str:
    literal = _sql_literal(replication_password)
    return f"CREATE ROLE {REPLICATION_USER} WITH REPLICATION LOGIN PASSWORD {literal};\n"


# Sourced by the image's entrypoint after initdb: replicas stream WAL over the network.
POSTGRES_REPLICATION_HBA = (
    '#!/bin/sh\necho "host replication ' + REPLICATION_USER + ' all scram-sha-256" >> "$PGDATA/pg_hba.conf"\n'
)


def redis_conf(
    password: str | None,
    append_only: bool,
    max_memory: int,
    eviction: str = "noeviction",
    persistent: bool = True,
) -> str:
    """`max_memory` bytes at most: past it, `noeviction` refuses writes (the main Redis: no key may be
    dropped) and `allkeys-lru` drops the least recently used keys (a cache)."""
    lines = [
        "bind 0.0.0.0 -::*",
        f"port {names.REDIS_PORT}",
        f"maxmemory {max_memory}",
        f"maxmemory-policy {eviction}",
    ]
    if persistent:
        lines += [
            "dir /data",
            f"appendonly {'yes' if append_only else 'no'}",
            "appendfsync everysec",
            # Snapshots too, so a restart without AOF still has recent data.
            "save 3600 1 300 100 60 10000",
        ]
    else:
        lines += ["dir /tmp", "appendonly no", 'save ""']
    if password:
        lines.append(f"requirepass {password}")
    else:
        lines.append("protected-mode no")
    return "\n".join(lines) + "\n"


def nats_conf(
    users: Mapping[str, str],
    namespace: str,
    replicas: int,
    store_bytes: int,
    cluster_password: str | None,
    app: str = names.NATS,
) -> str:
    """JetStream on every server; a route mesh with its own credentials when there is more than one.
    `users` are services (NATS user = service name), each held to its subjects (nats_permissions.py).
    `app` is the StatefulSet's name: the servers find each other by their pods' names."""
    ports = names.NATS_PORTS
    lines = [
        "server_name: $POD_NAME",
        f"listen: 0.0.0.0:{ports['client']}",
        f"http: 0.0.0.0:{ports['monitor']}",
        "lame_duck_duration: 30s",
        "jetstream {",
        "  store_dir: /data",
        # Leave a tenth of the volume free: a full disk stops the server.
        f"  max_file_store: {store_bytes * 9 // 10}",
        "}",
    ]
    if users:
        lines.append(users_block(users, SERVICES))
    if replicas > 1:
        auth = f"{NATS_CLUSTER_USER}:{cluster_password}@" if cluster_password else ""
        routes = ", ".join(
            f"nats://{auth}{names.pod_address(app, i)}.{namespace}.svc:{ports['cluster']}"
            for i in range(replicas)
        )
        lines += [
            "cluster {",
            "  name: venta",
            f"  listen: 0.0.0.0:{ports['cluster']}",
            f"  routes: [{routes}]",
        ]
        if cluster_password:
            lines.append(
                f"  authorization {{ user: {NATS_CLUSTER_USER}, password: {json.dumps(cluster_password)} }}"
            )
        lines.append("}")
    return "\n".join(lines) + "\n"
