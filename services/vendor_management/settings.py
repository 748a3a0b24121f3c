from __future__ import annotations

from pydantic import Field

from services.common.settings import DatabaseSettings, JwtSettings, NatsSettings


class Settings(DatabaseSettings, NatsSettings, JwtSettings):
    # The relay publishes right after each commit; this poll only catches rows left by a crash.
    outbox_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    outbox_batch_size: int = Field(default=100, ge=1, le=1000)
