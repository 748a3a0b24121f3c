"""Reads that tolerate a little lag, served by the read replica (``DATABASE_READ_URL``) when one is
set, reachable and close enough behind the primary; by the primary otherwise.

A read path declares the lag it tolerates: ``await reads.within(seconds).fetch(...)``. The replica
measures its own lag, at most once per ``LAG_CHECK_SECONDS``: none while it streams from the primary
and has replayed all it received; otherwise (replay behind, or the stream cut, say the primary is
away) the time since it replayed its last transaction, an upper bound on how stale it is. So with the
primary gone the replica goes on serving for as long as the tolerance allows, then stops. A server
that is not in recovery (promoted) is never read: it no longer follows. A replica that fails to
answer is left alone for ``DB_READ_RETRY_SECONDS`` (the primary serves meanwhile), so an outage costs
one failed attempt, not one per request. ``db_reads_total{server}`` counts who served each read.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import asyncpg
from prometheus_client import Counter

log = logging.getLogger("venta.postgres")

LAG_CHECK_SECONDS = 1.0
DB_READS = Counter(
    "db_reads_total", "Reads of lag-tolerant paths, by the server that served them", ["server"]
)
_LAG = """
SELECT pg_is_in_recovery() AS standby,
       EXISTS (SELECT 1 FROM pg_stat_wal_receiver)
         AND pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() AS caught_up,
       EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8 AS since_replay
"""
# What "the replica did not answer" looks like; anything else (a bad query) is the caller's error.
_REPLICA_FAILURES: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.CannotConnectNowError,
    # "canceling statement due to conflict with recovery": the replica replayed over the read.
    asyncpg.exceptions.SerializationError,
)


class ReadPool:
    """The primary's pool and, when set, a pool of the replica that connects on first use (a replica
    that is down never delays the service's start)."""

    def __init__(self, primary: asyncpg.Pool, replica: asyncpg.Pool | None, retry_seconds: float) -> None:
        self.primary, self.replica, self.retry_seconds = primary, replica, retry_seconds
        self._down_until = 0.0
        self._lag: float | None = None  # None: not following a primary
        self._lag_checked = -LAG_CHECK_SECONDS

    def within(self, max_lag_seconds: float) -> Reader:
        return Reader(self, max_lag_seconds)

    async def _on_replica(self, max_lag: float, method: str, query: str, args: tuple[Any, ...]) -> Any:
        """The result from the replica, or ``_FALLBACK`` when the replica may not serve this read."""
        if self.replica is None or time.monotonic() < self._down_until:
            return _FALLBACK
        try:
            async with self.replica.acquire(timeout=2.0) as conn:
                if time.monotonic() - self._lag_checked >= LAG_CHECK_SECONDS:
                    self._lag = _lag(await conn.fetchrow(_LAG))
                    self._lag_checked = time.monotonic()
                if self._lag is None or self._lag > max_lag:
                    return _FALLBACK
                return await getattr(conn, method)(query, *args)
        except _REPLICA_FAILURES as exc:
            self._down_until = time.monotonic() + self.retry_seconds
            log.warning("read replica failed; reading the primary", extra={"error": f"{type(exc).__name__}"})
            return _FALLBACK

    async def run(self, max_lag: float, method: str, query: str, args: tuple[Any, ...]) -> Any:
        result = await self._on_replica(max_lag, method, query, args)
        if result is not _FALLBACK:
            DB_READS.labels("replica").inc()
            return result
        DB_READS.labels("primary").inc()
        return await getattr(self.primary, method)(query, *args)


_FALLBACK = object()


def _lag(row: asyncpg.Record) -> float | None:
    """Seconds the replica may be behind; None when it is no replica (promoted, or a primary)."""
    if not row["standby"]:
        return None
    if row["caught_up"]:
        return 0.0
    return float("inf") if row["since_replay"] is None else float(row["since_replay"])


class Reader:
    """``fetch``, ``fetchrow`` and ``fetchval`` as on a pool, each one read from where ``ReadPool``
    says. Reads only: the replica refuses writes, and a transaction cannot span the two servers."""

    def __init__(self, pool: ReadPool, max_lag_seconds: float) -> None:
        self._pool, self.max_lag_seconds = pool, max_lag_seconds

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._pool.run(self.max_lag_seconds, "fetch", query, args)
        return rows

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._pool.run(self.max_lag_seconds, "fetchrow", query, args)
        return row

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self._pool.run(self.max_lag_seconds, "fetchval", query, args)


async def open_replica_pool(url: str, max_size: int, service_name: str) -> asyncpg.Pool:
    """No connection is made until the first read: creating it never fails."""
    pool = await asyncpg.create_pool(
        url,
        min_size=0,
        max_size=max_size,
        timeout=2.0,
        command_timeout=30,
        server_settings={"application_name": service_name},
    )
    assert pool is not None
    return pool
