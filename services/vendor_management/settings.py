from __future__ import annotations

from pydantic import Field

from services.catalog import OUTBOX_RETENTION_DAYS
from services.common.settings import DatabaseSettings, JwtSettings, NatsSettings


class Settings(DatabaseSettings, NatsSettings, JwtSettings):
    # The relay publishes right after each commit; this poll only catches rows left by a crash.
    outbox_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    outbox_batch_size: int = Field(default=100, ge=1, le=1000)
    # Published rows are kept this long (for inspection after an incident), then deleted.
    outbox_retention_days: float = Field(default=OUTBOX_RETENTION_DAYS, gt=0, le=3650)
    outbox_retention_interval_seconds: float = Field(default=600.0, gt=0, le=86400)
