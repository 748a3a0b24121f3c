"""Per-client fixed-window rate limit kept in Redis, with local leases so most requests skip Redis.

The shared counter for a client and window lives in Redis (``rl:<client>:<window>``). Instead of one
round trip per request, a gateway replica takes a *lease* of up to ``lease`` requests at a time
(one Lua call: INCRBY + PEXPIRE) and spends it locally. A lease is granted only out of what is left
under the limit, so all replicas together never admit more than the limit; the price is that leased
but unspent requests of a window are lost (at most ``lease - 1`` per replica and client). Once the
window is exhausted, the replica answers 429 locally until the window ends. Small limits get a lease
of 1, i.e. exact counting.

When Redis fails the limiter lets requests through (and counts that): the gateway's readiness shows
the outage, and refusing all traffic for a counter outage would be worse.
"""

from __future__ import annotations

import logging
import math
import time

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("venta.gateway.ratelimit")
DECISIONS = Counter("gateway_rate_limit_total", "Rate limit decisions", ["decision"])

# KEYS[1] counter; ARGV[1] lease size; ARGV[2] window in ms. Returns the counter after the increment.
_LEASE = """
local count = redis.call('INCRBY', KEYS[1], ARGV[1])
if count == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return count
"""
MAX_LEASE = 20


def lease_size(limit: int) -> int:
    return max(1, min(MAX_LEASE, limit // 50))


class RateLimiter:
    def __init__(self, redis: Redis, limit: int, window_seconds: int, max_clients: int = 50_000) -> None:
        self._limit = limit
        self._window = window_seconds
        self._lease = lease_size(limit)
        self._script = redis.register_script(_LEASE)
        self._max_clients = max_clients
        # client -> [window index, requests left in the local lease, window exhausted (0/1)]
        self._local: dict[str, list[int]] = {}

    def _retry_after(self, now: float) -> int:
        return max(1, math.ceil(self._window - now % self._window))

    async def hit(self, client: str) -> int:
        """0 when the request may pass, else the seconds to wait (the ``Retry-After`` value)."""
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
        try:
            key = f"rl:{client}:{window}"
            count = int(await self._script(keys=[key], args=[self._lease, self._window * 1000]))
        except RedisError as exc:
            DECISIONS.labels("unchecked").inc()
            log.warning("rate limit store unavailable; request let through", extra={"error": str(exc)})
            return 0
        granted = max(0, min(self._lease, self._limit - (count - self._lease)))
        if len(self._local) >= self._max_clients:
            self._forget_old(window)
        if granted == 0:
            self._local[client] = [window, 0, 1]
            DECISIONS.labels("limited").inc()
            return self._retry_after(now)
        self._local[client] = [window, granted - 1, 0]
        return 0

    def _forget_old(self, window: int) -> None:
        stale = [client for client, entry in self._local.items() if entry[0] != window]
        for client in stale:
            del self._local[client]
        if len(self._local) >= self._max_clients:
            self._local.clear()
