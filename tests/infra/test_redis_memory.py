"""Redis memory is bounded and nothing that must stay can be evicted. Real redis-servers run the dev
stack's rendered configs (only port, bind and directory moved): search-discovery's cache instance is
flooded with result entries far past its maxmemory and evicts its least recently used ones, while the
main instance keeps every location, ownership and rate-limit key; filled up itself, the main instance
refuses writes rather than dropping any of them."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError

from infra.render import CapturedStack
from infra.render.manifests import is_kubernetes_object, to_manifest
from services.api_gateway.ratelimit import RateLimiter
from services.geolocation.store import Keys
from services.search_discovery.cache import SearchCache
from tests.images.stores import RenderedRedis, command_file
from tests.infra.helpers import Manifest
from tests.policy.captured import unwrap_secrets

ENTRY = 220 * 1024  # the largest search answers seen cached (a full page of vendors)
VENDORS = 200
CLIENTS = 50


def clear_manifests(captured: CapturedStack) -> list[Manifest]:
    """The stack's objects with secrets in the clear, as the cluster holds them."""
    return [
        to_manifest(dataclasses.replace(r, inputs=unwrap_secrets(r.inputs)))
        for r in captured.resources
        if is_kubernetes_object(r)
    ]


@contextlib.contextmanager
def rendered_redis(objects: list[Manifest], app: str) -> Iterator[tuple[RenderedRedis, dict[str, str]]]:
    (workload,) = [m for m in objects if m["kind"] == "StatefulSet" and m["metadata"]["name"] == app]
    conf = command_file(workload, objects)
    settings = dict(line.split(" ", 1) for line in conf.splitlines() if line and not line.startswith("#"))
    server = RenderedRedis("127.0.0.1", conf)
    try:
        server.start()
        yield server, settings
    finally:
        server.cleanup()


def client(server: RenderedRedis, settings: dict[str, str]) -> Redis:
    return Redis(host=server.host, port=server.port, password=settings["requirepass"])


async def info(redis: Redis) -> dict[str, Any]:
    return dict(await redis.info("memory")) | dict(await redis.info("stats"))


async def write_main_keys(redis: Redis, keys: Keys) -> RateLimiter:
    """What the main Redis must never lose: positions and owners (geolocation), rate-limit counters
    (the gateway's, which carry a TTL, so a volatile-* policy would evict them)."""
    for i in range(VENDORS):
        await redis.geoadd(keys.positions, (13.4 + i / 1000, 52.5, f"vendor-{i}"))
        await redis.hset(keys.vendor(f"vendor-{i}"), mapping={"owner": f"owner-{i}", "active": "1"})
        await redis.zadd(keys.last_seen, {f"vendor-{i}": 1_700_000_000 + i})
    limiter = RateLimiter(redis, limit=1000, window_seconds=3600)
    for i in range(CLIENTS):
        assert await limiter.hit(f"client-{i}") == 0
    return limiter


async def main_keys_intact(redis: Redis, keys: Keys) -> None:
    assert await redis.zcard(keys.positions) == VENDORS
    owners = [await redis.hget(keys.vendor(f"vendor-{i}"), "owner") for i in range(VENDORS)]
    assert owners == [f"owner-{i}".encode() for i in range(VENDORS)]
    assert await redis.zcard(keys.last_seen) == VENDORS
    counters = [k async for k in redis.scan_iter("rl:*")]
    assert len(counters) == CLIENTS
    assert all([await redis.ttl(k) > 0 for k in counters])


@pytest.fixture(scope="module")
def dev_objects(dev_stack: CapturedStack) -> list[Manifest]:
    return clear_manifests(dev_stack)


def test_a_cache_flood_evicts_cache_entries_and_nothing_of_the_main_redis(
    dev_objects: list[Manifest],
) -> None:
    with rendered_redis(dev_objects, "redis") as main, rendered_redis(dev_objects, "redis-cache") as cache:
        assert main[1]["maxmemory-policy"] == "noeviction"
        assert cache[1]["maxmemory-policy"] == "allkeys-lru"
        cache_limit = int(cache[1]["maxmemory"])

        async def run() -> None:
            main_redis, cache_redis = client(*main), client(*cache)
            keys = Keys()
            await write_main_keys(main_redis, keys)
            results = SearchCache(cache_redis, ttl_seconds=60)
            stored = []
            # Three times the cache's memory in distinct answers: every write is accepted.
            for i in range(3 * cache_limit // ENTRY):
                key, hit = await results.get(f"q={i}")
                assert key is not None and hit is None
                await cache_redis.set(key, b"x" * ENTRY, ex=60)  # SearchCache.put, but failing loudly
                stored.append(key)
            cache_info, main_info = await info(cache_redis), await info(main_redis)
            assert cache_info["evicted_keys"] > 0
            assert cache_info["used_memory"] <= cache_limit + ENTRY
            # Least recently used first (Redis samples, so roughly): the oldest answers went, the newest stay.
            alive = [bool(await cache_redis.exists(key)) for key in stored]
            third = len(stored) // 3
            assert sum(alive) < len(stored) // 2 and alive[-1]
            assert sum(alive[:third]) < sum(alive[-third:])
            assert main_info["evicted_keys"] == 0
            await main_keys_intact(main_redis, keys)
            await main_redis.aclose()
            await cache_redis.aclose()

        asyncio.run(run())


def test_the_main_redis_refuses_writes_when_full_and_evicts_nothing(dev_objects: list[Manifest]) -> None:
    with rendered_redis(dev_objects, "redis") as main:
        limit = int(main[1]["maxmemory"])

        async def run() -> None:
            redis = client(*main)
            keys = Keys()
            await write_main_keys(redis, keys)
            with pytest.raises(OutOfMemoryError):
                for i in range(2 * limit // 2**20):
                    await redis.set(f"junk:{i}", b"x" * 2**20)
            assert (await info(redis))["evicted_keys"] == 0
            await main_keys_intact(redis, keys)
            await redis.aclose()

        asyncio.run(run())
