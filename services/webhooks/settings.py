from __future__ import annotations

from pydantic import Field, model_validator

from services.common.settings import DatabaseSettings, JwtSettings, NatsSettings


class Settings(DatabaseSettings, NatsSettings, JwtSettings):
    service_name: str = "webhooks"
    # Loopback, private, link-local and other non-public targets are refused unless this is set.
    webhook_allow_private_targets: bool = False
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_backoff_base_seconds: float = Field(default=2.0, gt=0)
    webhook_backoff_cap_seconds: float = Field(default=3600.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    webhook_batch_size: int = Field(default=50, ge=1, le=1000)
    webhook_max_subscriptions_per_owner: int = Field(default=50, ge=1, le=10_000)

    @model_validator(mode="after")
    def _cap_above_base(self) -> Settings:
        if self.webhook_backoff_cap_seconds < self.webhook_backoff_base_seconds:
            raise ValueError("WEBHOOK_BACKOFF_CAP_SECONDS is below WEBHOOK_BACKOFF_BASE_SECONDS")
        return self
