from __future__ import annotations

from pydantic import Field, model_validator

from services.catalog import WEBHOOK_MAX_SUBSCRIPTIONS_PER_OWNER, WEBHOOK_RETENTION_DAYS
from services.common.settings import DatabaseSettings, JwtSettings, NatsSettings


class Settings(DatabaseSettings, NatsSettings, JwtSettings):
    service_name: str = "webhooks"
    # Loopback, private, link-local and other non-public targets are refused unless this is set.
    webhook_allow_private_targets: bool = False
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_backoff_base_seconds: float = Field(default=2.0, gt=0)
    webhook_backoff_cap_seconds: float = Field(default=3600.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # A receiver that does not even accept the connection gets this long, not the whole timeout.
    webhook_connect_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    # Receivers' answers are never decompressed and never read past this: only the status counts.
    webhook_max_response_bytes: int = Field(default=4096, ge=0, le=65536)
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    webhook_batch_size: int = Field(default=50, ge=1, le=1000)
    # Deliveries in flight per replica, and per target (host[:port] of the URL).
    webhook_max_in_flight: int = Field(default=100, ge=1, le=10_000)
    webhook_max_in_flight_per_target: int = Field(default=4, ge=1, le=100)
    # This many failures in a row (no answer, 5xx or 429) open a target's circuit for the pause:
    # its deliveries wait without spending attempts, then one trial decides whether it closes again.
    webhook_breaker_failures: int = Field(default=5, ge=1, le=1000)
    webhook_breaker_open_seconds: float = Field(default=30.0, gt=0, le=3600)
    webhook_max_subscriptions_per_owner: int = Field(
        default=WEBHOOK_MAX_SUBSCRIPTIONS_PER_OWNER, ge=1, le=10_000
    )
    # Finished deliveries (delivered or dead) and their attempts are deleted this long after finishing.
    webhook_retention_days: float = Field(default=WEBHOOK_RETENTION_DAYS, gt=0, le=3650)
    webhook_retention_interval_seconds: float = Field(default=600.0, gt=0, le=86400)

    @model_validator(mode="after")
    def _cap_above_base(self) -> Settings:
        if self.webhook_backoff_cap_seconds < self.webhook_backoff_base_seconds:
            raise ValueError("WEBHOOK_BACKOFF_CAP_SECONDS is below WEBHOOK_BACKOFF_BASE_SECONDS")
        if self.webhook_max_in_flight_per_target > self.webhook_max_in_flight:
            raise ValueError("WEBHOOK_MAX_IN_FLIGHT_PER_TARGET exceeds WEBHOOK_MAX_IN_FLIGHT")
        return self
