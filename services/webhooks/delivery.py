"""Sends due deliveries: signed POSTs, exponential backoff with full jitter, then dead letters.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` and leased (their next attempt pushed past the
request timeout), so several replicas share the work and a replica that dies mid-request only delays
that delivery until the lease runs out. Delivery is at-least-once; receivers de-duplicate on the
``Idempotency-Key`` header (the event id).

Bounded against hostile or broken receivers: each delivery runs as its own task and records its own
outcome, so a slow receiver delays only its own deliveries; a claim skips targets that are full or
whose circuit is open (``gate.TargetGate``) and takes at most a few rows per target; answers are
neither decompressed nor read past ``WEBHOOK_MAX_RESPONSE_BYTES``; connecting has its own short timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import aiohttp
import asyncpg
from prometheus_client import Counter

from services.webhooks.backoff import retry_delay
from services.webhooks.gate import TargetGate
from services.webhooks.settings import Settings
from services.webhooks.signing import signed_headers
from services.webhooks.targets import GuardedResolver, TargetRefused, check_target

log = logging.getLogger("venta.webhooks.delivery")
# Counted after the round's transaction commits, so a rolled-back round is not counted.
DELIVERIES = Counter("webhook_deliveries_total", "Delivery attempts by outcome", ["outcome"])
DEAD_LETTERS = Counter("webhook_dead_letters_total", "Deliveries given up and moved to the dead letters")
CIRCUITS_OPENED = Counter("webhook_circuits_opened_total", "Times a failing target's circuit opened")
_MAX_ERROR = 500

# Due rows, oldest first, skipping targets that may not take more ($3) and at most $5 per target, so
# one target's backlog cannot fill a claim. The scan is bounded ($4); rows are re-checked when locked.
_CLAIM = """
WITH due AS (
    SELECT d.id, d.next_attempt_at, s.target
    FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
    WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND s.target <> ALL ($3::text[])
    ORDER BY d.next_attempt_at LIMIT $4
), spread AS (
    SELECT id FROM (
        SELECT id, next_attempt_at, row_number() OVER (PARTITION BY target ORDER BY next_attempt_at) AS n
        FROM due
    ) ranked
    WHERE n <= $5 ORDER BY next_attempt_at LIMIT $1
), locked AS (
    SELECT id FROM webhook_deliveries
    WHERE id IN (SELECT id FROM spread) AND status = 'pending' AND next_attempt_at <= now()
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_deliveries d
SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
FROM locked, webhook_subscriptions s
WHERE d.id = locked.id AND s.id = d.subscription_id
RETURNING d.id, d.event_id, d.event_type, d.body, d.attempts, s.url, s.secret, s.target
"""
# Claimed rows a target cannot take now go back unspent, due again after the wait.
_HAND_BACK = """
UPDATE webhook_deliveries d
SET attempts = d.attempts - 1, next_attempt_at = now() + make_interval(secs => w.wait)
FROM unnest($1::uuid[], $2::float8[]) AS w (id, wait)
WHERE d.id = w.id AND d.status = 'pending'
"""
# A target whose circuit opened: its due rows wait for the pause, so claims do not scan past them.
_PARK = """
UPDATE webhook_deliveries d
SET next_attempt_at = now() + make_interval(secs => $2)
FROM webhook_subscriptions s
WHERE s.id = d.subscription_id AND s.target = $1 AND d.status = 'pending'
  AND d.next_attempt_at < now() + make_interval(secs => $2)
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

    @property
    def healthy(self) -> bool:
        """The receiver answered and was not overloaded: what keeps its circuit closed."""
        return self.status_code is not None and self.status_code < 500 and self.status_code != 429


async def _discard_body(resp: aiohttp.ClientResponse, limit: int) -> None:
    """Read at most ``limit`` bytes of the answer (as sent: never decompressed); a longer answer
    closes the connection instead of being drained, so its size costs nothing."""
    read = 0
    while read <= limit:
        chunk = await resp.content.read(limit + 1 - read)
        if not chunk:
            return  # the whole answer was small: the connection can be reused
        read += len(chunk)
    resp.close()


async def post(
    session: aiohttp.ClientSession, row: asyncpg.Record, allow_private: bool, max_response_bytes: int
) -> Outcome:
    started = time.perf_counter()
    body: bytes = row["body"]
    headers = signed_headers(row["secret"], row["event_id"], row["event_type"], int(time.time()), body)
    try:
        await check_target(row["url"], allow_private)  # IP literals never reach the resolver
        async with session.post(row["url"], data=body, headers=headers, allow_redirects=False) as resp:
            await _discard_body(resp, max_response_bytes)
            status, error = resp.status, None if resp.status < 300 else f"HTTP {resp.status}"
    except TargetRefused as exc:
        status, error = None, f"target refused: {exc}"
    except aiohttp.ServerTimeoutError as exc:  # the connect timeout (and read timeouts) land here
        status, error = None, f"timed out: {exc}" if str(exc) else "timed out"
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
        self._gate = TargetGate(
            settings.webhook_max_in_flight_per_target,
            settings.webhook_breaker_failures,
            settings.webhook_breaker_open_seconds,
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._finished = asyncio.Event()  # set whenever a delivery ends: a slot or a target is free

    async def __aenter__(self) -> Deliverer:
        s = self._settings
        resolver = GuardedResolver(s.webhook_allow_private_targets)
        connector = aiohttp.TCPConnector(
            resolver=resolver,
            limit=s.webhook_max_in_flight,
            limit_per_host=s.webhook_max_in_flight_per_target,
            ttl_dns_cache=10,
        )
        timeout = aiohttp.ClientTimeout(
            total=s.webhook_timeout_seconds, sock_connect=s.webhook_connect_timeout_seconds
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,  # a small gzip body must not become a large one in memory
            cookie_jar=aiohttp.DummyCookieJar(),  # one receiver's cookies are nobody else's business
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()  # leased rows: a cancelled attempt is retried when its lease runs out
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    async def claim(self) -> int:
        """Start a delivery for every due row this replica can take now; returns how many were claimed."""
        s = self._settings
        free = s.webhook_max_in_flight - len(self._tasks)
        if free <= 0:
            return 0
        lease = s.webhook_timeout_seconds + 5.0
        per_target = s.webhook_max_in_flight_per_target
        limit = min(free, s.webhook_batch_size)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_CLAIM, limit, lease, self._gate.blocked(), limit * 10, per_target)
            waits: dict[str, float] = {}
            for row in rows:
                wait = self._gate.acquire(row["target"])
                if wait is None:
                    task = asyncio.create_task(self._deliver(row), name=f"deliver-{row['id']}")
                    self._tasks.add(task)
                    task.add_done_callback(self._done)
                else:
                    waits[row["id"]] = wait
            if waits:
                await conn.execute(_HAND_BACK, list(waits), list(waits.values()))
        return len(rows)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._finished.set()

    async def _deliver(self, row: asyncpg.Record) -> None:
        s = self._settings
        assert self._session is not None
        target = row["target"]
        healthy, result = False, None
        try:
            outcome = await post(
                self._session, row, s.webhook_allow_private_targets, s.webhook_max_response_bytes
            )
            healthy = outcome.healthy
            result = await self._save(row, outcome)
        finally:
            # The slot is held until the outcome is recorded, so parking (below) comes after every
            # failure recorded before the circuit opened.
            opened = self._gate.release(target, healthy)
        if opened:
            await self._open_circuit(target)
        if result is not None:
            DELIVERIES.labels(result).inc()
            if result == "dead_lettered":
                DEAD_LETTERS.inc()

    async def _save(self, row: asyncpg.Record, outcome: Outcome) -> str | None:
        # A failure recorded while the target's circuit is open waits for it.
        pause = self._gate.paused(row["target"])
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                return await self._record(conn, row, outcome, pause)
        except Exception as exc:  # database away: the lease runs out and the delivery is tried again
            log.warning("delivery not recorded", extra={"delivery_id": str(row["id"]), "error": str(exc)})
            return None

    async def _open_circuit(self, target: str) -> None:
        CIRCUITS_OPENED.inc()
        log.warning("receiver failing: circuit open", extra={"target": target})
        try:
            await self._pool.execute(_PARK, target, self._gate.paused(target))
        except Exception as exc:  # only an optimisation: claims skip the open target anyway
            log.warning("parking deliveries failed", extra={"target": target, "error": str(exc)})

    async def _record(
        self, conn: asyncpg.Connection, row: asyncpg.Record, outcome: Outcome, pause: float = 0.0
    ) -> str:
        """Log the attempt and move the delivery on (a retry no sooner than ``pause`` seconds);
        returns delivered, retried or dead_lettered."""
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
        delay = 0.0 if dead else max(pause, retry_delay(attempt, base, cap))
        await conn.execute(_FAILED, row["id"], outcome.status_code, outcome.error, dead, delay)
        if not dead:
            return "retried"
        log.warning("delivery dead-lettered", extra={"delivery_id": str(row["id"]), "attempts": attempt})
        return "dead_lettered"

    async def run(self) -> None:
        s = self._settings
        while True:
            self._finished.clear()
            try:
                claimed = await self.claim()
            except Exception as exc:  # database away: try again after a pause
                log.warning("claiming deliveries failed", extra={"error": str(exc)})
                claimed = 0
            if claimed >= min(s.webhook_batch_size, s.webhook_max_in_flight):
                continue  # more may be due
            # Nothing more to take now: wait for the poll, or for a delivery to end (a freed slot
            # may let a full target's next row go).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), s.webhook_poll_seconds)
