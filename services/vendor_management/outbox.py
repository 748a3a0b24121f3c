"""Transactional outbox: no vendor change is committed without its event, and no event is lost.

Guarantee: **at-least-once** delivery. A change and its event row commit in one transaction
(``record_event``). The relay then publishes pending rows to JetStream in order, with
``Nats-Msg-Id`` = event id, and marks them published; published rows are deleted after
``OUTBOX_RETENTION_DAYS``. If the process dies after the commit and
before (or during) the publish, the rows stay pending and the relay of this or any other replica
publishes them on its next pass; if it dies after publishing but before marking, the event is sent
again with the same id: JetStream drops it inside its duplicate window and consumers ignore it by
vendor version (search-discovery, geolocation) or event id.

Each event is also published to its vendor's subject on the ``VENDOR_STATE`` stream, which keeps
only the latest message per vendor and never ages it out, so a consumer that lost what it built
(geolocation's Redis) can rebuild it from there. For that latest message to be the newest version,
events leave in commit order: replicas take turns (a transaction-scoped advisory lock) instead of
publishing side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import nats.errors
import orjson
from fastapi import FastAPI
from nats.js import JetStreamContext
from prometheus_client import Counter

from services.common.app import Background, Resources
from services.common.logs import REQUEST_ID_HEADER, request_id_var
from services.common.nats_client import new_event, vendor_state_subject
from services.common.retention import keep_deleting
from services.common.tasks import running_tasks
from services.vendor_management.settings import Settings

log = logging.getLogger("venta.outbox")
PUBLISHED = Counter("vendor_events_published_total", "Vendor events published to JetStream", ["type"])
PUBLISH_FAILURES = Counter("vendor_event_publish_failures_total", "Failed attempts to publish outbox rows")
# pg_advisory_xact_lock key held by the replica whose relay is publishing (any fixed number).
RELAY_LOCK = 0x76656E746F7574
PURGED = Counter("vendor_outbox_purged_total", "Published outbox rows deleted after the retention period")
# Published rows only: a pending one is never deleted, however old.
_PURGE = """
DELETE FROM outbox WHERE seq IN (
    SELECT seq FROM outbox WHERE published_at < now() - make_interval(secs => $1) LIMIT $2
)
"""


async def record_event(conn: asyncpg.Connection, subject: str, data: dict[str, Any]) -> str:
    """Write the event in the caller's transaction; it becomes visible to the relay only on commit."""
    event = new_event(subject, data)
    await conn.execute(
        "INSERT INTO outbox (id, subject, payload, request_id) VALUES ($1, $2, $3, $4)",
        event["id"],
        subject,
        orjson.dumps(event, default=str),
        request_id_var.get(),
    )
    return str(event["id"])


class OutboxRelay:
    def __init__(
        self, pool: asyncpg.Pool, js: JetStreamContext, poll_seconds: float, batch_size: int
    ) -> None:
        self._pool = pool
        self._js = js
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Called after a commit so the event leaves at once instead of at the next poll."""
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish one batch; return how many rows were published and marked.

        Rows go out in order and the batch stops at the first failed publish. What JetStream already
        acknowledged is marked in a transaction that commits whatever happened to the rest (the
        failure is raised only after it), so a failed publish never sends earlier rows again.
        """
        failure: Exception | None = None
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", RELAY_LOCK)
            rows = await conn.fetch(
                "SELECT seq, id, subject, payload, request_id FROM outbox WHERE published_at IS NULL"
                " ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch_size,
            )
            done: list[int] = []
            for row in rows:
                try:
                    await self._publish(row)
                except Exception as exc:  # NATS away or refusing: the rest waits for the next pass
                    failure = exc
                    break
                done.append(row["seq"])
                PUBLISHED.labels(row["subject"]).inc()
            if done:
                await conn.execute("UPDATE outbox SET published_at = now() WHERE seq = ANY($1)", done)
        if failure is not None:
            raise failure
        return len(done)

    async def _publish(self, row: asyncpg.Record) -> None:
        """The event on its subject, then as its vendor's latest state (both deduplicated by id)."""
        payload = bytes(row["payload"])
        headers = {"Nats-Msg-Id": str(row["id"])}
        if row["request_id"]:
            headers[REQUEST_ID_HEADER] = row["request_id"]
        await self._js.publish(row["subject"], payload, timeout=5, headers=headers)
        vendor_id = str(orjson.loads(payload)["data"]["id"])
        await self._js.publish(vendor_state_subject(vendor_id), payload, timeout=5, headers=headers)

    async def backlog(self) -> dict[str, Any]:
        """Events waiting to be published, for the full ``/health`` report."""
        row = await self._pool.fetchrow(
            "SELECT count(*) AS pending, extract(epoch FROM now() - min(created_at)) AS oldest"
            " FROM outbox WHERE published_at IS NULL"
        )
        return {"pending": row["pending"], "oldest_seconds": round(float(row["oldest"] or 0), 1)}

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                published = await self.publish_pending()
            except (nats.errors.Error, TimeoutError) as exc:  # NATS away: the rows wait for it
                PUBLISH_FAILURES.inc()
                log.warning("outbox publish failed; will retry", extra={"error": repr(exc)})
                published = 0
            except Exception:
                PUBLISH_FAILURES.inc()
                log.exception("outbox relay pass failed; will retry")
                published = 0
            if published >= self._batch_size:
                continue  # more may be waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()


def relay_running(settings: Settings) -> Background:
    """The service's background work: the relay, started after the clients open."""

    @contextlib.asynccontextmanager
    async def run(app: FastAPI, res: Resources) -> AsyncIterator[None]:
        assert res.db is not None and res.js is not None
        relay = OutboxRelay(res.db, res.js, settings.outbox_poll_seconds, settings.outbox_batch_size)
        app.state.relay = relay
        app.state.health.add_details("outbox", relay.backlog)
        purge = keep_deleting(
            res.db,
            _PURGE,
            settings.outbox_retention_days * 86400,
            settings.outbox_retention_interval_seconds,
            PURGED,
        )
        async with _running(relay), running_tasks(outbox_retention=purge):
            yield

    return run


@contextlib.asynccontextmanager
async def _running(relay: OutboxRelay) -> AsyncIterator[None]:
    task = asyncio.create_task(relay.run(), name="outbox-relay")
    try:
        yield
    finally:
        # Drain: the current pass finishes and one last pass publishes what the last requests wrote.
        await relay.stop()
        await task
        with contextlib.suppress(Exception):
            await relay.publish_pending()
