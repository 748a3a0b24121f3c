"""redis.asyncio client with the guide's behaviour: 3 retries per command, a bounded retry time.

Each command is tried at most ``1 + redis_max_retries`` times with exponential backoff; connect and
socket timeouts are sized so that all attempts of one command end within ``redis_retry_deadline_seconds``
(10 s by default). ``health_check_interval`` pings idle connections before reuse, so a Redis restart
costs one retried command rather than an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import EncodableT, KeyT

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


async def evalsha_raw(
    redis: Redis, script: AsyncScript, keys: Sequence[KeyT], args: Sequence[EncodableT]
) -> Any:
    """One ``EVALSHA`` on a pooled connection, its reply as Redis sent it (no response callback).

    A hot read pays for redis-py's per-command machinery (retry wrapper, callbacks, timing hooks) more
    than for the script itself. Only the first attempt goes this short way: a script Redis no longer
    knows (after a restart) or a dropped connection falls back to the client's own path, which loads
    the script and retries as configured above.
    """
    pool = redis.connection_pool
    conn = await pool.get_connection()
    try:
        await conn.send_command("EVALSHA", script.sha, len(keys), *keys, *args)
        return await conn.read_response()
    except NoScriptError:
        pass  # the error reply was read whole, so the connection is still in step
    except ResponseError:
        raise
    except (RedisConnectionError, RedisTimeoutError, OSError):
        await conn.disconnect()  # a half-read reply must not reach the next user of this connection
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)
    return await script(keys=keys, args=args)
