"""Durable JetStream consumer of vendor events feeding the read model.

A pull consumer named after ``NATS_QUEUE`` (default: the service name) survives restarts and is shared
by all replicas. A message is acked only after its event is applied, so delivery is at-least-once;
applying is idempotent (read_model.py). A malformed event is terminated (never redelivered) and
logged; a failure to apply (database down) is nak'ed and retried after a delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
import nats.errors
import nats.js.errors
from fastapi import FastAPI
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter

from services.common.app import Background, Resources
from services.common.logs import REQUEST_ID_HEADER, request_id_var
from services.common.nats_client import VENDORS_STREAM, parse_event
from services.search_discovery.cache import SearchCache
from services.search_discovery.read_model import BadEvent, apply_event
from services.search_discovery.settings import Settings

log = logging.getLogger("venta.search.consumer")
EVENTS = Counter("search_vendor_events_total", "Vendor events handled by search", ["outcome"])


class VendorEventConsumer:
    def __init__(
        self, pool: asyncpg.Pool, js: JetStreamContext, cache: SearchCache, durable: str, batch: int
    ) -> None:
        self._pool = pool
        self._js = js
        self._cache = cache
        self._durable = durable
        self._batch = batch
        self._stopping = asyncio.Event()

    async def handle(self, msg: Msg) -> bool:
        """Apply one message and settle it; True when the read model changed."""
        token = request_id_var.set((msg.headers or {}).get(REQUEST_ID_HEADER, ""))
        try:
            try:
                event = parse_event(msg.data)
                changed = await apply_event(self._pool, event)
            except (ValueError, BadEvent) as exc:
                EVENTS.labels("rejected").inc()
                log.error("dropping malformed vendor event", extra={"error": str(exc), "about": msg.subject})
                await msg.term()
                return False
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                EVENTS.labels("retried").inc()
                log.warning("could not apply vendor event; will retry", extra={"error": str(exc)})
                await msg.nak(delay=1)
                return False
            EVENTS.labels("applied" if changed else "ignored").inc()
            await msg.ack()
            return changed
        finally:
            request_id_var.reset(token)

    async def run(self) -> None:
        subscription = await self._js.pull_subscribe(
            "vendor.>",
            durable=self._durable,
            stream=VENDORS_STREAM.name,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL, ack_wait=30
            ),
        )
        try:
            while not self._stopping.is_set():
                await self._next_batch(subscription)
        finally:
            # The durable consumer stays on the server; only this replica's interest ends.
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _next_batch(self, subscription: JetStreamContext.PullSubscription) -> None:
        try:
            messages = await subscription.fetch(self._batch, timeout=0.5)
        except (TimeoutError, nats.errors.TimeoutError):
            return
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            log.warning("fetching vendor events failed", extra={"error": str(exc)})
            await asyncio.sleep(0.5)
            return
        changed = False
        for msg in messages:
            changed = await self.handle(msg) or changed
        if changed:
            await self._invalidate()

    async def _invalidate(self) -> None:
        try:
            await self._cache.invalidate()
        except Exception as exc:
            # Entries would be served until their TTL ends; retry on the next change.
            log.error("could not invalidate the search cache", extra={"error": str(exc)})

    def stop(self) -> None:
        self._stopping.set()


def consuming(settings: Settings) -> Background:
    """The service's background work: the consumer, started after the clients open."""

    @contextlib.asynccontextmanager
    async def run(app: FastAPI, res: Resources) -> AsyncIterator[None]:
        assert res.db is not None and res.js is not None and res.redis is not None
        cache = SearchCache(res.redis, settings.search_cache_ttl_seconds)
        app.state.search_cache = cache
        batch = settings.consumer_batch_size
        consumer = VendorEventConsumer(res.db, res.js, cache, settings.queue_name, batch)
        async with _running(consumer):
            yield

    return run


@contextlib.asynccontextmanager
async def _running(consumer: VendorEventConsumer) -> AsyncIterator[None]:
    task = asyncio.create_task(consumer.run(), name="vendor-event-consumer")
    try:
        yield
    finally:
        # Drain: stop fetching, let the batch in hand finish and be acked.
        consumer.stop()
        await task
