"""Redis cache of search results, invalidated by vendor events through a generation counter.

Keys are ``search:<generation>:<hash of the query>``. Applying an event that changed the read model
bumps ``search:generation``, so every cached answer is out of use at once (old keys expire by TTL);
no scan or delete of keys is needed. Redis trouble never fails a search: it only bypasses the cache.
"""

from __future__ import annotations

import hashlib
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

GENERATION_KEY = "search:generation"
log = logging.getLogger("venta.search.cache")


def cache_key(generation: bytes | str | None, query: str) -> str:
    digest = hashlib.sha256(query.encode()).hexdigest()[:32]
    if isinstance(generation, bytes):
        generation = generation.decode()
    return f"search:{generation or '0'}:{digest}"


class SearchCache:
    def __init__(self, redis: Redis, ttl_seconds: int) -> None:
        self._redis = redis
        self._ttl = ttl_seconds

    async def get(self, query: str) -> tuple[str | None, bytes | None]:
        """(key to store under, cached value); key None means Redis is unavailable."""
        try:
            key = cache_key(await self._redis.get(GENERATION_KEY), query)
            value = await self._redis.get(key)
        except RedisError as exc:
            log.warning("search cache unavailable", extra={"error": str(exc)})
            return None, None
        return key, value.encode() if isinstance(value, str) else value

    async def put(self, key: str, value: bytes) -> None:
        try:
            await self._redis.set(key, value, ex=self._ttl)
        except RedisError as exc:
            log.warning("search cache unavailable", extra={"error": str(exc)})

    async def invalidate(self) -> None:
        await self._redis.incr(GENERATION_KEY)
