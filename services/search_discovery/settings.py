from __future__ import annotations

from pydantic import AliasChoices, Field

from services.common.settings import DatabaseSettings, NatsSettings, RedisSettings, RedisUrl


class Settings(DatabaseSettings, RedisSettings, NatsSettings):
    # The result cache is this service's only use of Redis: CACHE_REDIS_URL, the bounded Redis that
    # evicts (a cluster's redis-cache), or else REDIS_URL, as in a local run with one Redis.
    redis_url: RedisUrl = Field(validation_alias=AliasChoices("cache_redis_url", "redis_url"))
    search_cache_ttl_seconds: int = Field(default=60, ge=1, le=3600)
    consumer_batch_size: int = Field(default=50, ge=1, le=500)
