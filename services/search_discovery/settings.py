from __future__ import annotations

from pydantic import Field

from services.common.settings import DatabaseSettings, NatsSettings, RedisSettings


class Settings(DatabaseSettings, RedisSettings, NatsSettings):
    search_cache_ttl_seconds: int = Field(default=60, ge=1, le=3600)
    consumer_batch_size: int = Field(default=50, ge=1, le=500)
