"""Sends due deliveries: signed POSTs, exponential backoff with full jitter, then dead letters.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` and leased (their next attempt pushed past the
request timeout), so several replicas share the work and a replica that dies mid-request only delays
that delivery until the lease runs out. Delivery is at-least-once; receivers de-duplicate on the
``Idempotency-Key`` header (the event id).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiohttp
import asyncpg
from prometheus_client import Counter

from services.webhooks.backoff import retry_delay
from services.webhooks.settings import Settings
from services.webhooks.signing import signed_headers
from services.webhooks.targets import GuardedResolver, TargetRefused, check_target

log = logging.getLogger("venta.webhooks.delivery")
# Counted after the round's transaction commits, so a rolled-back round is not counted.
DELIVERIES = Counter("webhook_deliveries_total", "Delivery attempts by outcome", ["outcome"])
DEAD_LETTERS = Counter("webhook_dead_letters_total", "Deliveries given up and moved to the dead letters")
_MAX_ERROR = 500

_CLAIM = """
UPDATE webhook_deliveries d
SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
FROM (
    SELECT id FROM webhook_deliveries
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
) due, webhook_subscriptions s
WHERE d.id = due.id AND s.id = d.subscription_id
RETURNING d.id, d.event_id, d.event_type, d.body, d.attempts, s.url, s.secret
"""
_LOG_ATTEMPT = """
INSERT INTO webhook_attempts (delivery_id, attempt, status_code, error, duration_ms)
VALUES ($1, $2, $3, $4, $5)
"""
_DELIVERED = """
UPDATE webhook_deliveries
SET status = 'delivered', finished_at = now(), last_status_code = $2, last_error = NULL
WHERE id = $1 AND status = 'pending'
"""
_FAILED = """
UPDATE webhook_deliveries
SET last_status_code = $2, last_error = $3,
    status = CASE WHEN $4 THEN 'dead' ELSE 'pending' END,
    finished_at = CASE WHEN $4 THEN now() END,
    next_attempt_at = now() + make_interval(secs => $5)
WHERE id = $1 AND status = 'pending'
"""


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def post(session: aiohttp.ClientSession, row: asyncpg.Record, allow_private: bool) -> Outcome:
    started = time.perf_counter()
    body: bytes = row["body"]
    headers = signed_headers(row["secret"], row["event_id"], row["event_type"], int(time.time()), body)
    try:
        await check_target(row["url"], allow_private)  # IP literals never reach the resolver
        async with session.post(row["url"], data=body, headers=headers, allow_redirects=False) as resp:
            await resp.read()
            status, error = resp.status, None if resp.status < 300 else f"HTTP {resp.status}"
    except TargetRefused as exc:
        status, error = None, f"target refused: {exc}"
    except TimeoutError:
        status, error = None, "timed out"
    except aiohttp.ClientError as exc:
        status, error = None, f"{type(exc).__name__}: {exc}"
    return Outcome(status, error and error[:_MAX_ERROR], round((time.perf_counter() - started) * 1000, 2))


class Deliverer:
    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Deliverer:
        resolver = GuardedResolver(self._settings.webhook_allow_private_targets)
        connector = aiohttp.TCPConnector(resolver=resolver, limit=100, ttl_dns_cache=10)
        timeout = aiohttp.ClientTimeout(total=self._settings.webhook_timeout_seconds)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def run_once(self) -> int:
        """Attempt every due delivery (up to a batch); returns how many were attempted."""
        assert self._session is not None
        s = self._settings
        lease = s.webhook_timeout_seconds + 5.0
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_CLAIM, s.webhook_batch_size, lease)
        allow = s.webhook_allow_private_targets
        outcomes = await asyncio.gather(*(post(self._session, row, allow) for row in rows))
        async with self._pool.acquire() as conn, conn.transaction():
            pairs = zip(rows, outcomes, strict=True)
            results = [await self._record(conn, row, outcome) for row, outcome in pairs]
        for result in results:
            DELIVERIES.labels(result).inc()
        DEAD_LETTERS.inc(results.count("dead_lettered"))
        return len(rows)

    async def _record(self, conn: asyncpg.Connection, row: asyncpg.Record, outcome: Outcome) -> str:
        """Log the attempt and move the delivery on; returns delivered, retried or dead_lettered."""
        s = self._settings
        attempt = row["attempts"]
        await conn.execute(
            _LOG_ATTEMPT, row["id"], attempt, outcome.status_code, outcome.error, outcome.duration_ms
        )
        if outcome.ok:
            await conn.execute(_DELIVERED, row["id"], outcome.status_code)
            return "delivered"
        dead = attempt >= s.webhook_max_attempts
        base, cap = s.webhook_backoff_base_seconds, s.webhook_backoff_cap_seconds
        delay = 0.0 if dead else retry_delay(attempt, base, cap)
        await conn.execute(_FAILED, row["id"], outcome.status_code, outcome.error, dead, delay)
        if not dead:
            return "retried"
        log.warning("delivery dead-lettered", extra={"delivery_id": str(row["id"]), "attempts": attempt})
        return "dead_lettered"

    async def run(self) -> None:
        while True:
            try:
                attempted = await self.run_once()
            except Exception as exc:  # database away: try again after a pause
                log.warning("delivery round failed", extra={"error": str(exc)})
                attempted = 0
            if attempted < self._settings.webhook_batch_size:
                await asyncio.sleep(self._settings.webhook_poll_seconds)
