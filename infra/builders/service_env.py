"""What each service reads from its environment (docs/contracts.md), split into ConfigMap and Secret.

Derived from the service's catalog entry (services/catalog.py), never from its name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from infra.builders import names
from stacks.catalog import SERVICES, ServiceSpec
from stacks.model import StackSettings


@dataclass(frozen=True)
class Endpoints:
    """Where the services reach the data stores: known before anything exists, so config is plain data."""

    postgres_host: str
    redis_host: str
    cache_host: str
    nats_urls: tuple[str, ...]
    postgres_port: int = names.POSTGRES_PORT
    redis_port: int = names.REDIS_PORT
    cache_port: int = names.REDIS_PORT
    # The read replica's Service, when the stack runs one (DATABASE_READ_URL).
    postgres_read_host: str | None = None


def endpoints(namespace: str, read_replica: bool = False) -> Endpoints:
    """The in-cluster stores' client Services."""
    return Endpoints(
        postgres_host=names.cluster_host(names.POSTGRES, namespace),
        postgres_read_host=names.cluster_host(names.replica(names.POSTGRES), namespace)
        if read_replica
        else None,
        redis_host=names.cluster_host(names.REDIS, namespace),
        cache_host=names.cluster_host(names.REDIS_CACHE, namespace),
        # One address through the client Service: the server tells clients about its cluster peers.
        nats_urls=(f"nats://{names.cluster_host(names.NATS, namespace)}:{names.NATS_PORTS['client']}",),
    )


def stack_endpoints(settings: StackSettings) -> Endpoints:
    """The stack's stores: its own Services, or the external servers it is pointed at."""
    # No replica of the stack's beside an external PostgreSQL: its provider's replicas are not ours to
    # address, so the services read from the primary (DATABASE_URL) alone.
    where = endpoints(settings.namespace, read_replica=settings.postgres.runs_read_replica)
    if (postgres := settings.postgres.external) is not None:
        where = dataclasses.replace(where, postgres_host=postgres.host, postgres_port=postgres.port)
    if (redis := settings.redis.external) is not None:
        where = dataclasses.replace(where, redis_host=redis.host, redis_port=redis.port)
    if (cache := settings.redis_cache.external) is not None:
        where = dataclasses.replace(where, cache_host=cache.host, cache_port=cache.port)
    if (nats := settings.nats.external) is not None:
        where = dataclasses.replace(where, nats_urls=(f"nats://{nats.host}:{nats.port}",))
    return where


def config_data(
    spec: ServiceSpec, settings: StackSettings, where: Endpoints, jwt_public_key: str
) -> dict[str, str]:
    """Non-secret environment: goes into the service's ConfigMap."""
    service = settings.services[spec.name]
    data = {
        "SERVICE_NAME": spec.name,
        "PORT": str(names.SERVICE_PORT),
        # Probes, /metrics and the docs: the port the pod spec declares as `internal`.
        "INTERNAL_PORT": str(names.INTERNAL_PORT),
        "API_DOCS": "true" if settings.api_docs else "false",
        "LOG_LEVEL": service.log_level,
        "ENVIRONMENT": settings.environment,
        # Public: every service may verify tokens (the gateway does for every non-public route).
        "JWT_PUBLIC_KEY": accepted_public_keys(jwt_public_key, settings.auth.extra_public_keys),
    }
    if spec.database:
        data |= {"DB_POOL_MIN": str(settings.db_pool_min), "DB_POOL_MAX": str(settings.db_pool_max)}
    if spec.nats:
        data |= {"NATS_SERVERS": ",".join(where.nats_urls), "NATS_QUEUE": spec.name}
    if spec.public_entry:
        # Through each upstream's Service, on port 80. Their readiness (/health/upstreams) on the same
        # host at the gateway's own INTERNAL_PORT, which each Service exposes too: no *_INTERNAL needed.
        data |= {f"UPSTREAM_{s.env_suffix}": f"http://{s.name}" for s in SERVICES if not s.public_entry}
        # The ingress controller's pods, whose X-Forwarded-For names the client; empty trusts none.
        data["TRUSTED_PROXY_CIDRS"] = ",".join(settings.gateway.trusted_proxy_cidrs)
    if spec.file_storage:
        data["STORAGE_DIR"] = names.STORAGE_DIR
    tuned = settings.service_environment
    data |= {key: tuned.get(key, default) for key, default in spec.env}
    return data


def accepted_public_keys(signing_key: str, extra: Sequence[str]) -> str:
    """The signing seed's own key first, then the stack's extra keys (a rotation's old or next key),
    PEM blocks one after the other as JWT_PUBLIC_KEY holds them; a key given twice is listed once."""
    blocks: list[str] = []
    for pem in (signing_key, *extra):
        block = pem.strip() + "\n"
        if block not in blocks:
            blocks.append(block)
    return "".join(blocks)


@dataclass(frozen=True)
class Credentials:
    """Resolved secret values for one service; only ever built inside an `apply` on secret outputs."""

    database_password: str | None = None
    redis_password: str | None = None
    cache_password: str | None = None
    nats_password: str | None = None
    jwt_signing_seed: str | None = None


def secret_data(spec: ServiceSpec, where: Endpoints, creds: Credentials) -> dict[str, str]:
    """Secret environment: goes into the service's Secret, never into a ConfigMap or an env literal."""
    data: dict[str, str] = {}
    if spec.database:
        data["DATABASE_URL"] = database_url(
            spec.database_name,
            creds.database_password or "",
            where.postgres_host,
            spec.database_name,
            where.postgres_port,
        )
        if where.postgres_read_host is not None:
            # The same role and database on the replica: reads that tolerate lag go there.
            data["DATABASE_READ_URL"] = database_url(
                spec.database_name,
                creds.database_password or "",
                where.postgres_read_host,
                spec.database_name,
            )
    if spec.redis:
        data["REDIS_URL"] = redis_url(creds.redis_password, where.redis_host, where.redis_port)
    if spec.cache:
        data["CACHE_REDIS_URL"] = redis_url(creds.cache_password, where.cache_host, where.cache_port)
    if spec.nats:
        data["NATS_USER"] = spec.name if creds.nats_password else ""
        data["NATS_PASSWORD"] = creds.nats_password or ""
    if spec.signs_tokens:
        data["JWT_SIGNING_SEED"] = creds.jwt_signing_seed or ""
    return data


def database_url(user: str, password: str, host: str, database: str, port: int = names.POSTGRES_PORT) -> str:
    credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
    return f"postgresql://{credentials}@{host}:{port}/{database}"


def redis_url(password: str | None, host: str, port: int = names.REDIS_PORT) -> str:
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{host}:{port}/0"
