"""Per-client fixed-window rate limit kept in Redis, with local leases so most requests skip Redis.

The shared counter for a client and window lives in Redis (``rl:<client>:<window>``). Instead of one
round trip per request, a gateway replica takes a *lease* of up to ``lease`` requests at a time
(one Lua call: INCRBY + PEXPIRE) and spends it locally. A lease is granted only out of what is left
under the limit, so all replicas together never admit more than the limit; the price is that leased
but unspent requests of a window are lost (at most ``lease - 1`` per replica and client). Once the
window is exhausted, the replica answers 429 locally until the window ends. Small limits get a lease
of 1, i.e. exact counting.

The lease goes over the service's shared pipelined Redis connection (services/common/redis_pipeline.py),
about a tenth of redis-py's CPU per call. That connection retries a command after a dropped connection
or an overdue reply; a retried lease may count twice, which only makes the limit stricter.

When Redis fails the limiter lets requests through (and counts that) for a couple of seconds before
asking Redis again: the gateway's readiness shows the outage, and refusing all traffic for a counter
outage would be worse. Concurrent requests of one client share a single lease request.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from prometheus_client import Counter
from redis.exceptions import RedisError

from services.common.redis_pipeline import LuaScript, PipelinedRedis

log = logging.getLogger("venta.gateway.ratelimit")
DECISIONS = Counter("gateway_rate_limit_total", "Rate limit decisions", ["decision"])

# KEYS[1] counter; ARGV[1] lease size; ARGV[2] window in ms. Returns the counter after the increment.
_LEASE = LuaScript("""
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
if count == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return count
""")
MAX_LEASE = 20
STORE_DOWN_PAUSE_SECONDS = 2.0


def lease_size(limit: int) -> int:
    return max(1, min(MAX_LEASE, limit // 50))


class RateLimiter:
    def __init__(
        self, redis: PipelinedRedis, limit: int, window_seconds: int, max_clients: int = 50_000
    ) -> None:
        self._limit = limit
        self._window = window_seconds
        self._lease = lease_size(limit)
        self._redis = redis
        self._max_clients = max_clients
        # client -> [window index, requests left in the local lease, window exhausted (0/1)]
        self._local: dict[str, list[int]] = {}
        # One lease request in flight per client: concurrent requests wait for it instead of each
        # asking Redis (at 32 concurrent requests that is the difference between 1 and 32 round trips).
        self._leasing: dict[str, asyncio.Future[None]] = {}
        # After a Redis failure, requests pass unchecked for a moment instead of each waiting on retries.
        self._store_down_until = 0.0

    def _retry_after(self, now: float) -> int:
        return max(1, math.ceil(self._window - now % self._window))

    async def hit(self, client: str) -> int:
        """0 when the request may pass, else the seconds to wait (the ``Retry-After`` value)."""
        while True:
            now = time.time()
            window = int(now // self._window)
            entry = self._local.get(client)
            if entry is not None and entry[0] == window:
                if entry[1] > 0:
                    entry[1] -= 1
                    return 0
                if entry[2]:
                    DECISIONS.labels("limited").inc()
                    return self._retry_after(now)
            if now < self._store_down_until:
                DECISIONS.labels("unchecked").inc()
                return 0
            pending = self._leasing.get(client)
            if pending is not None:
                await asyncio.shield(pending)
                continue
            await self._take_lease(client, window)

    async def _take_lease(self, client: str, window: int) -> None:
        done = asyncio.get_running_loop().create_future()
        self._leasing[client] = done
        try:
            key = f"rl:{client}:{window}"
            count = int(await self._redis.evalsha(_LEASE, (key,), (self._lease, self._window * 1000)))
        except RedisError as exc:
            self._store_down_until = time.time() + STORE_DOWN_PAUSE_SECONDS
            log.warning("rate limit store unavailable; requests pass unchecked", extra={"error": str(exc)})
            return
        finally:
            del self._leasing[client]
            done.set_result(None)
        if len(self._local) >= self._max_clients:
            self._forget_old(window)
        granted = max(0, min(self._lease, self._limit - (count - self._lease)))
        self._local[client] = [window, granted, 1 if granted == 0 else 0]

    def _forget_old(self, window: int) -> None:
        stale = [client for client, entry in self._local.items() if entry[0] != window]
        for client in stale:
            del self._local[client]
        if len(self._local) >= self._max_clients:
            self._local.clear()
