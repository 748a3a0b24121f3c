"""The gateway's leased rate limiter against real Redis: shared limit, few round trips, Redis outages."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio import Redis

from services.api_gateway.ratelimit import MAX_LEASE, RateLimiter
from services.common.metrics import sample_value
from services.common.redis_pipeline import PipelinedRedis


def counters(url: str) -> PipelinedRedis:
    """The gateway's connection for its leases (as open_pipelined_redis makes it)."""
    return PipelinedRedis(url, timeout=2.0, connect_timeout=1.0, retries=2)


async def test_replicas_together_never_exceed_the_limit_and_rarely_ask_redis(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    connections = [counters(redis_url) for _ in range(2)]
    try:
        replicas = [RateLimiter(c, limit=1000, window_seconds=60) for c in connections]
        before = int((await redis.info("stats"))["total_commands_processed"])
        # 1500 concurrent requests of one client, spread over two gateway replicas.
        results = await asyncio.gather(*(replicas[i % 2].hit("user:ann") for i in range(1500)))
        commands = int((await redis.info("stats"))["total_commands_processed"]) - before
        allowed = results.count(0)
        assert 1000 - 2 * MAX_LEASE <= allowed <= 1000
        assert all(0 < wait <= 60 for wait in results if wait)
        # Leases and single-flight keep Redis traffic far below one call per request.
        assert commands <= 1500 / MAX_LEASE * 2 + 10
        assert await replicas[0].hit("user:bob") == 0  # another client is unaffected
    finally:
        await redis.aclose()
        for connection in connections:
            await connection.aclose()


async def test_small_limits_count_exactly(redis_url: str) -> None:
    redis = counters(redis_url)
    try:
        limiter = RateLimiter(redis, limit=5, window_seconds=30)
        results = [await limiter.hit("ip:10.0.0.1") for _ in range(7)]
        assert results[:5] == [0] * 5 and all(results[5:])
    finally:
        await redis.aclose()


async def test_requests_pass_unchecked_and_fast_while_redis_is_down(private_server: Any) -> None:
    server = private_server("redis")
    redis = counters(server.url)
    try:
        limiter = RateLimiter(redis, limit=5, window_seconds=30)
        server.stop()
        unchecked = sample_value("gateway_rate_limit_total", {"decision": "unchecked"})
        started = time.monotonic()
        results = await asyncio.gather(*(limiter.hit(f"user:{i}") for i in range(50)))
        assert results == [0] * 50
        assert time.monotonic() - started < 5  # one failed attempt, not 50 rounds of retries
        assert sample_value("gateway_rate_limit_total", {"decision": "unchecked"}) - unchecked == 50
    finally:
        await redis.aclose()
