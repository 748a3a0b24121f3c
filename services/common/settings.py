"""Settings read once from the environment at start-up (pydantic-settings).

Each service declares ``class Settings(<mixins>)`` from the classes below and calls
``load_settings(Settings)``; a bad or missing variable raises ``SettingsError`` naming the variable and
the reason, and ``python -m services`` turns that into a one-line message and exit code 2. Nothing
below the settings object reads the environment.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    Field,
    NatsDsn,
    PostgresDsn,
    RedisDsn,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from services.catalog import DB_POOL_MAX, DB_POOL_MAX_LIMIT, DB_POOL_MIN, SHUTDOWN

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class SettingsError(Exception):
    """Raised when the environment does not describe a runnable service."""


def url_of(kind: Any, label: str) -> AfterValidator:
    """Checks a URL with pydantic's own type for it (`PostgresDsn`, ...) and keeps the value as given;
    the reason names what was expected, never the value (it may hold a password)."""
    adapter: TypeAdapter[Any] = TypeAdapter(kind)

    def check(value: Any) -> Any:
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        try:
            adapter.validate_python(text)
        except ValidationError as exc:
            raise ValueError(f"must be a {label} URL: {exc.errors()[0]['msg']}") from None
        return value

    return AfterValidator(check)


# Connection strings hold passwords: secrets, checked as URLs of their kind.
PostgresUrl = Annotated[SecretStr, url_of(PostgresDsn, "postgresql://")]
RedisUrl = Annotated[SecretStr, url_of(RedisDsn, "redis://")]
NatsUrl = Annotated[str, url_of(NatsDsn, "nats://")]


class ServiceSettings(BaseSettings):
    """What every service reads (see docs/contracts.md)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    service_name: str = Field(min_length=1)
    host: str = "0.0.0.0"  # a container listens on all its interfaces
    port: int = Field(default=8000, ge=1, le=65535)
    # Probes, /metrics and the API docs answer here, never on PORT: the public path (the gateway's
    # port, the Ingress) cannot reach them.
    internal_port: int = Field(default=9090, ge=1, le=65535)
    # /docs and /openapi.json on the internal port; off unless a local run turns it on.
    api_docs: bool = False
    # The largest WebSocket message a client may send; the server closes with 1009 beyond it.
    ws_max_message_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    log_level: LogLevel = "INFO"
    environment: str = "dev"
    # On SIGTERM: readiness fails and responses close their connections, while serving goes on this
    # long (0 for a process with no balancer in front); then uvicorn waits up to the grace for
    # in-flight requests before the lifespan shutdown runs (services/common/drain.py).
    shutdown_drain_seconds: float = Field(default=SHUTDOWN.drain, ge=0, le=300)
    shutdown_grace_seconds: int = Field(default=SHUTDOWN.in_flight, ge=1, le=300)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _ports_differ(self) -> ServiceSettings:
        if self.internal_port == self.port:
            raise ValueError(f"INTERNAL_PORT ({self.internal_port}) must differ from PORT ({self.port})")
        return self


class DatabaseSettings(ServiceSettings):
    database_url: PostgresUrl
    # Defaults and bound shared with the stack's settings (services/catalog.py).
    db_pool_min: int = Field(default=DB_POOL_MIN, ge=0, le=DB_POOL_MAX_LIMIT)
    db_pool_max: int = Field(default=DB_POOL_MAX, ge=1, le=DB_POOL_MAX_LIMIT)
    db_connect_timeout_seconds: float = Field(default=10.0, gt=0)
    # A read replica for the reads that tolerate a little lag (services/common/replica.py); unset,
    # they read the primary. After the replica fails, the primary serves them this long.
    database_read_url: PostgresUrl | None = None
    db_read_retry_seconds: float = Field(default=5.0, gt=0, le=300)

    @model_validator(mode="after")
    def _pool_bounds(self) -> DatabaseSettings:
        if self.db_pool_min > self.db_pool_max:
            raise ValueError(f"DB_POOL_MIN ({self.db_pool_min}) exceeds DB_POOL_MAX ({self.db_pool_max})")
        return self


class RedisSettings(ServiceSettings):
    redis_url: RedisUrl
    redis_max_retries: int = Field(default=3, ge=0, le=10)
    # Connect and command timeouts are chosen so that all retries of one command end within this bound.
    redis_retry_deadline_seconds: float = Field(default=10.0, gt=0, le=60)


class NatsSettings(ServiceSettings):
    nats_servers: Annotated[list[NatsUrl], NoDecode]
    nats_queue: str = ""
    nats_user: str = ""
    nats_password: SecretStr = SecretStr("")
    # The client reconnects for as long as the process lives, pausing 0.25 s, 0.5 s, ... up to
    # NATS_RECONNECT_WAIT_SECONDS between attempts. "5 reconnects, 2 s apart" is the outage budget:
    # once the connection has been down that long (10 s), readiness fails and
    # nats_reconnect_budget_exceeded turns 1. -1 never fails readiness for an outage.
    nats_max_reconnect_attempts: int = Field(default=5, ge=-1)
    nats_reconnect_wait_seconds: float = Field(default=2.0, gt=0, le=60)

    @field_validator("nats_servers", mode="before")
    @classmethod
    def _split_servers(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list) and not value:
            raise ValueError("needs at least one nats:// URL")
        return value

    @property
    def nats_outage_budget_seconds(self) -> float:
        """How long the connection may be down before readiness fails (infinite for -1)."""
        if self.nats_max_reconnect_attempts < 0:
            return float("inf")
        return self.nats_max_reconnect_attempts * self.nats_reconnect_wait_seconds

    @property
    def queue_name(self) -> str:
        """Durable consumer / queue group name shared by the replicas of one service."""
        return self.nats_queue or self.service_name


class JwtSettings(ServiceSettings):
    # One or more PEM public keys, all accepted (more than one while a signing key is rotated).
    jwt_public_key: str
    # Verified tokens are remembered this long (never past their own expiry); 0 verifies every time.
    # An Ed25519 check costs about 0.1-0.25 ms of CPU, more than the rest of a cached read.
    token_cache_seconds: float = Field(default=30.0, ge=0, le=300)

    @field_validator("jwt_public_key")
    @classmethod
    def _pem(cls, value: str) -> str:
        from services.common.auth import load_public_keys

        load_public_keys(value)  # raises ValueError with the reason
        return value


class JwtSigningSettings(JwtSettings):
    jwt_signing_seed: SecretStr
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86400)
    refresh_token_ttl_seconds: int = Field(default=14 * 86400, ge=300)

    @field_validator("jwt_signing_seed")
    @classmethod
    def _seed(cls, value: SecretStr) -> SecretStr:
        try:
            raw = base64.b64decode(value.get_secret_value(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64") from None
        if len(raw) != 32:
            raise ValueError(f"must decode to 32 bytes, got {len(raw)}")
        return value

    @model_validator(mode="after")
    def _key_pair_matches(self) -> JwtSigningSettings:
        from services.common.auth import key_id, load_public_keys, private_key_from_seed

        seed = self.jwt_signing_seed.get_secret_value()
        if key_id(private_key_from_seed(seed).public_key()) not in load_public_keys(self.jwt_public_key):
            raise ValueError("JWT_PUBLIC_KEY does not include the public key of JWT_SIGNING_SEED")
        return self


S = TypeVar("S", bound=ServiceSettings)


def describe_errors(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
        reason = "is required but not set" if error["type"] == "missing" else error["msg"]
        # Never echo the input: it may be a secret.
        parts.append(f"{name}: {reason}")
    return "; ".join(parts)


def load_settings(cls: type[S], **overrides: object) -> S:
    """Build ``cls`` from the environment (and ``overrides``), or raise ``SettingsError`` naming the keys."""
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(f"invalid settings for {cls.__module__}: {describe_errors(exc)}") from None
