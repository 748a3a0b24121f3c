"""What each service reads from its environment (docs/contracts.md), split into ConfigMap and Secret."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from stacks.catalog import SERVICES, ServiceSpec
from stacks.model import StackSettings

PORT = 8000
STORAGE_DIR = "/data/files"


@dataclass(frozen=True)
class Endpoints:
    """In-cluster addresses of the data stores: known before anything exists, so config is plain data."""

    postgres_host: str
    redis_host: str
    nats_urls: tuple[str, ...]


def endpoints(namespace: str) -> Endpoints:
    return Endpoints(
        postgres_host=f"postgres.{namespace}.svc",
        redis_host=f"redis.{namespace}.svc",
        # One address through the client Service: the server tells clients about its cluster peers.
        nats_urls=(f"nats://nats.{namespace}.svc:4222",),
    )


def config_data(
    spec: ServiceSpec, settings: StackSettings, where: Endpoints, jwt_public_key: str
) -> dict[str, str]:
    """Non-secret environment: goes into the service's ConfigMap."""
    service = settings.services[spec.name]  # type: ignore[index]
    data = {
        "SERVICE_NAME": spec.name,
        "PORT": str(PORT),
        "LOG_LEVEL": service.log_level,
        "ENVIRONMENT": settings.environment,
        "JWT_PUBLIC_KEY": jwt_public_key,
    }
    if spec.database:
        data |= {"DB_POOL_MIN": str(settings.db_pool_min), "DB_POOL_MAX": str(settings.db_pool_max)}
    if spec.nats:
        data |= {"NATS_SERVERS": ",".join(where.nats_urls), "NATS_QUEUE": spec.name}
    if spec.name == "api-gateway":
        data |= {f"UPSTREAM_{s.env_suffix}": f"http://{s.name}" for s in SERVICES if s is not spec}
    if spec.file_storage:
        data["STORAGE_DIR"] = STORAGE_DIR
    if spec.internet_egress:
        data["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "false"
    if spec.name == "geolocation":
        data["LOCATION_STALE_AFTER_SECONDS"] = str(settings.location_stale_after_seconds)
    return data


@dataclass(frozen=True)
class Credentials:
    """Resolved secret values for one service; only ever built inside an `apply` on secret outputs."""

    database_password: str | None = None
    redis_password: str | None = None
    nats_password: str | None = None
    jwt_signing_seed: str | None = None


def secret_data(spec: ServiceSpec, where: Endpoints, creds: Credentials) -> dict[str, str]:
    """Secret environment: goes into the service's Secret, never into a ConfigMap or an env literal."""
    data: dict[str, str] = {}
    if spec.database:
        data["DATABASE_URL"] = database_url(
            spec.database_name, creds.database_password or "", where.postgres_host, spec.database_name
        )
    if spec.redis:
        data["REDIS_URL"] = redis_url(creds.redis_password, where.redis_host)
    if spec.nats:
        data["NATS_USER"] = spec.name if creds.nats_password else ""
        data["NATS_PASSWORD"] = creds.nats_password or ""
    if spec.signs_tokens:
        data["JWT_SIGNING_SEED"] = creds.jwt_signing_seed or ""
    return data


def database_url(user: str, password: str, host: str, database: str) -> str:
    return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:5432/{database}"


def redis_url(password: str | None, host: str) -> str:
    auth = f":{quote(password, safe='')}@" if password else ""
    return f"redis://{auth}{host}:6379/0"
