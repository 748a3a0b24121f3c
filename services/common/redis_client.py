"""redis.asyncio client with the guide's behaviour: 3 retries per command, a bounded retry time.

Each command is tried at most ``1 + redis_max_retries`` times with exponential backoff; connect and
socket timeouts are sized so that all attempts of one command end within ``redis_retry_deadline_seconds``
(10 s by default). ``health_check_interval`` pings idle connections before reuse, so a Redis restart
costs one retried command rather than an error.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.settings import RedisSettings

BACKOFF_CAP_SECONDS = 0.5


def open_redis(settings: RedisSettings) -> Redis:
    attempts = settings.redis_max_retries + 1
    # Worst case: every attempt times out and every pause hits the cap.
    pauses = BACKOFF_CAP_SECONDS * (attempts - 1)
    per_attempt = max(0.1, (settings.redis_retry_deadline_seconds - pauses) / attempts)
    client: Redis = Redis.from_url(
        settings.redis_url,
        retry=Retry(ExponentialBackoff(cap=BACKOFF_CAP_SECONDS, base=0.05), settings.redis_max_retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionResetError],
        socket_connect_timeout=min(per_attempt, 2.0),
        socket_timeout=per_attempt,
        health_check_interval=30,
        client_name=settings.service_name,
    )
    return client
