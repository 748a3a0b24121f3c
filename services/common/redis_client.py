"""redis.asyncio client: 3 retries per command, a bounded retry time.

Each command is tried at most ``1 + redis_max_retries`` times with exponential backoff; connect and
socket timeouts are sized so that all attempts of one command end within ``redis_retry_deadline_seconds``
(10 s by default). ``health_check_interval`` pings idle connections before reuse, so a Redis restart
costs one retried command rather than an error. ``open_pipelined_redis`` gives the same budget to
the shared-connection client a service uses for its hottest commands (``redis_pipeline``).
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.redis_pipeline import BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS, PipelinedRedis
from services.common.settings import RedisSettings


def attempt_timeouts(settings: RedisSettings) -> tuple[float, float]:
    """(command timeout, connect timeout) per attempt, so that every attempt of one command ends
    within the retry deadline even when each times out and every pause hits the backoff cap."""
    attempts = settings.redis_max_retries + 1
    pauses = BACKOFF_CAP_SECONDS * (attempts - 1)
    per_attempt = max(0.1, (settings.redis_retry_deadline_seconds - pauses) / attempts)
    return per_attempt, min(per_attempt, 2.0)


def open_redis(settings: RedisSettings) -> Redis:
    per_attempt, connect_timeout = attempt_timeouts(settings)
    backoff = ExponentialBackoff(cap=BACKOFF_CAP_SECONDS, base=BACKOFF_BASE_SECONDS)
    client: Redis = Redis.from_url(
        settings.redis_url.get_secret_value(),
        retry=Retry(backoff, settings.redis_max_retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionResetError],
        socket_connect_timeout=connect_timeout,
        socket_timeout=per_attempt,
        health_check_interval=30,
        client_name=settings.service_name,
    )
    return client


def open_pipelined_redis(settings: RedisSettings) -> PipelinedRedis:
    """The shared-connection client for hot commands, with the same retry budget as ``open_redis``."""
    per_attempt, connect_timeout = attempt_timeouts(settings)
    return PipelinedRedis(
        settings.redis_url.get_secret_value(),
        timeout=per_attempt,
        connect_timeout=connect_timeout,
        retries=settings.redis_max_retries,
        client_name=f"{settings.service_name}-pipelined",
    )
